package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/telemetry-kit/telemetry-kit/consent"
)

// ErrorKind returns the error kind recorded instead of an error message,
// which is never recorded. It is "" for a nil error; the kind named by a
// [consent.Kinder] in the chain; otherwise a generic class from the error's type:
//
//	timeout      context.DeadlineExceeded, os.ErrDeadlineExceeded, a Timeout() error
//	canceled     context.Canceled
//	permission   fs.ErrPermission (EACCES, EPERM)
//	not_found    fs.ErrNotExist, exec.ErrNotFound
//	exists       fs.ErrExist
//	network      *net.OpError, *net.DNSError, *url.Error, connection refused/reset
//	fs           any other *fs.PathError, *os.LinkError, *os.SyscallError
//	subprocess   *exec.ExitError, *exec.Error
//	parse        JSON and strconv errors
//	eof          io.EOF, io.ErrUnexpectedEOF
//	error        anything else
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var k consent.Kinder
	if errors.As(err, &k) {
		if kind := snakeCase(Scrub(safeKind(k))); kind != "" {
			return kind
		}
	}
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &timeout) && timeout.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, fs.ErrPermission):
		return "permission"
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, exec.ErrNotFound):
		return "not_found"
	case errors.Is(err, fs.ErrExist):
		return "exists"
	case isNetwork(err):
		return "network"
	}
	var (
		pathErr   *fs.PathError
		linkErr   *os.LinkError
		sysErr    *os.SyscallError
		exitErr   *exec.ExitError
		execErr   *exec.Error
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		numErr    *strconv.NumError
	)
	switch {
	case errors.As(err, &pathErr), errors.As(err, &linkErr), errors.As(err, &sysErr):
		return "fs"
	case errors.As(err, &exitErr), errors.As(err, &execErr):
		return "subprocess"
	case errors.As(err, &syntaxErr), errors.As(err, &typeErr), errors.As(err, &numErr):
		return "parse"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	return "error"
}

// safeKind calls TelemetryKind, which is the author's code: a panic in it
// must not reach the host.
func safeKind(k consent.Kinder) (kind string) {
	defer func() {
		if recover() != nil {
			kind = ""
		}
	}()
	return k.TelemetryKind()
}

func isNetwork(err error) bool {
	var urlErr *url.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var addrErr *net.AddrError
	switch {
	case errors.As(err, &opErr), errors.As(err, &dnsErr), errors.As(err, &addrErr), errors.As(err, &urlErr):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return true
	}
	return false
}

// snakeCase lower-cases s, turns every run of other characters into one
// "_", splits CamelCase words, trims "_" and keeps at most 64 characters.
// The result starts with a letter (a leading digit gets "e_").
func snakeCase(s string) string {
	var b strings.Builder
	pendingSep := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			if b.Len() > 0 && i > 0 && (s[i-1] >= 'a' && s[i-1] <= 'z' || s[i-1] >= '0' && s[i-1] <= '9') {
				pendingSep = true
			}
			c += 'a' - 'A'
			fallthrough
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			if pendingSep && b.Len() > 0 {
				b.WriteByte('_')
			}
			pendingSep = false
			if b.Len() == 0 && c >= '0' && c <= '9' {
				b.WriteString("e_")
			}
			b.WriteByte(c)
		default:
			pendingSep = true
		}
		if b.Len() >= 64 {
			break
		}
	}
	out := b.String()
	if len(out) > 64 {
		out = out[:64]
	}
	return strings.TrimRight(out, "_")
}
