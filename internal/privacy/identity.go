package privacy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

// IDPrefix starts every anonymous user ID.
const IDPrefix = "anon_"

const machineIDFile = "machine_id"

// AnonymousID returns the user_id for service on this machine:
// "anon_" + hex(HMAC-SHA256(key = service, message = machine ID)).
//
// The machine ID is the operating system's (/etc/machine-id or the D-Bus
// one on Linux, IOPlatformUUID on macOS, MachineGuid on Windows, hostid on
// BSD), read with github.com/denisbrodbeck/machineid (on Linux, the same
// two files it reads are read directly, in the same order). Where none can be
// read, a random ID is generated once and kept in dir/machine_id (0600).
// dir "" means [DefaultDir](service).
//
// The result is stable for one machine and one tool, and different tools
// get unrelated IDs. The raw machine ID never leaves this function. On
// macOS and BSD reading the machine ID runs a small system command: call
// AnonymousID once per process and keep the result.
func AnonymousID(service, dir string) (string, error) {
	return anonymousID(service, dir, readMachineID)
}

func anonymousID(service, dir string, machineID func() (string, error)) (string, error) {
	if service == "" {
		return "", errors.New("consent: no service name configured")
	}
	id, err := machineID()
	id = strings.TrimSpace(id)
	if err != nil || id == "" {
		if dir == "" {
			if dir, err = DefaultDir(service); err != nil {
				return "", fmt.Errorf("consent: no machine ID and no place to keep one: %w", err)
			}
		}
		if id, err = fallbackID(filepath.Join(dir, machineIDFile)); err != nil {
			return "", err
		}
	}
	return derive(service, id), nil
}

func derive(service, machineID string) string {
	mac := hmac.New(sha256.New, []byte(service))
	mac.Write([]byte(machineID))
	return IDPrefix + hex.EncodeToString(mac.Sum(nil))
}

// fallbackID reads the stored random ID, or creates it. Concurrent
// first runs agree on one ID: the file is published with a hard link,
// which fails if another process got there first.
func fallbackID(path string) (string, error) {
	id, err := readFallback(path)
	if err == nil {
		return id, nil
	}
	// A damaged file is replaced; a missing one is created without
	// overwriting a concurrent creator's.
	replace := !errors.Is(err, fs.ErrNotExist)
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id = hex.EncodeToString(b[:])
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("consent: keeping a machine ID: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".machine_id.*.tmp")
	if err != nil {
		return "", fmt.Errorf("consent: keeping a machine ID: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name)
	_, werr := tmp.WriteString(id + "\n")
	if err := errors.Join(werr, tmp.Sync(), tmp.Close()); err != nil {
		return "", fmt.Errorf("consent: keeping a machine ID: %w", err)
	}
	if replace {
		if err := os.Rename(name, path); err != nil {
			return "", fmt.Errorf("consent: keeping a machine ID: %w", err)
		}
		return id, nil
	}
	if err := os.Link(name, path); err != nil {
		if existing, rerr := readFallback(path); rerr == nil {
			return existing, nil // another process won the race
		}
		if err := os.Rename(name, path); err != nil { // no hard links here
			return "", fmt.Errorf("consent: keeping a machine ID: %w", err)
		}
	}
	return id, nil
}

func readFallback(path string) (string, error) {
	data, err := fsutil.ReadFile(path)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(data))
	if len(id) != 64 {
		return "", fmt.Errorf("consent: %s is not a machine ID", path)
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", fmt.Errorf("consent: %s is not a machine ID", path)
	}
	return id, nil
}
