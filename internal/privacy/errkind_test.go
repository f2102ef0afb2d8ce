package privacy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

type kindErr struct{ kind string }

func (e kindErr) Error() string         { return "secret details: /home/alice/x" }
func (e kindErr) TelemetryKind() string { return e.kind }

type panicKind struct{}

func (panicKind) Error() string         { return "x" }
func (panicKind) TelemetryKind() string { panic("author bug") }

func TestErrorKind(t *testing.T) {
	_, statErr := os.Stat(filepath.Join(t.TempDir(), "missing"))
	_, parseErr := strconv.Atoi("x")
	var syntaxErr error = json.Unmarshal([]byte("{"), new(any))
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, dialErr := (&net.Dialer{}).DialContext(context.Background(), "tcp", "127.0.0.1:1")
	exitErr := exec.Command(os.Args[0], "-test.run=^$", "-test.bogusflag").Run()
	_, lookErr := exec.LookPath("no-such-binary-telemetry-kit")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"author kind", kindErr{"ConfigInvalid"}, "config_invalid"},
		{"author kind wrapped", fmt.Errorf("load: %w", kindErr{"quota exceeded!"}), "quota_exceeded"},
		{"author kind with PII", kindErr{"bob@example.com"}, "email"},
		{"author kind empty", kindErr{"  "}, "error"},
		{"author kind panics", panicKind{}, "error"},
		{"author kind digit first", kindErr{"404"}, "e_404"},
		{"deadline", context.DeadlineExceeded, "timeout"},
		{"context timeout", ctx.Err(), "timeout"},
		{"os deadline", os.ErrDeadlineExceeded, "timeout"},
		{"canceled", fmt.Errorf("run: %w", context.Canceled), "canceled"},
		{"not exist", statErr, "not_found"},
		{"errnotexist", os.ErrNotExist, "not_found"},
		{"permission", &fs.PathError{Op: "open", Path: "/root/x", Err: syscall.EACCES}, "permission"},
		{"exists", &fs.PathError{Op: "mkdir", Path: "x", Err: syscall.EEXIST}, "exists"},
		{"other fs", &fs.PathError{Op: "read", Path: "x", Err: syscall.EISDIR}, "fs"},
		{"dial refused", dialErr, "network"},
		{"dns", &net.DNSError{Err: "no such host", Name: "x.invalid"}, "network"},
		{"conn reset", fmt.Errorf("read: %w", syscall.ECONNRESET), "network"},
		{"exit", exitErr, "subprocess"},
		{"lookpath", lookErr, "not_found"},
		{"atoi", parseErr, "parse"},
		{"json", syntaxErr, "parse"},
		{"eof", io.ErrUnexpectedEOF, "eof"},
		{"plain", errors.New("something at /home/alice went wrong"), "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ErrorKind(tc.err); got != tc.want {
				t.Errorf("ErrorKind(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
	if dialErr == nil || exitErr == nil {
		t.Fatal("test setup: expected real errors")
	}
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"ConfigInvalid": "config_invalid", "HTTPError": "httperror", "rate-limit": "rate_limit", "__a__b__": "a_b",
		"already_snake": "already_snake", "Über": "ber", "": "",
		"x0123456789012345678901234567890123456789012345678901234567890123456789": "x012345678901234567890123456789012345678901234567890123456789012",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}
