package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/denisbrodbeck/machineid"
)

var idPattern = regexp.MustCompile(`^anon_[0-9a-f]{64}$`)

func TestAnonymousIDFromMachineID(t *testing.T) {
	raw, err := machineid.ID()
	if err != nil || strings.TrimSpace(raw) == "" {
		t.Skipf("this machine has no readable machine ID (%v); the fallback is tested below", err)
	}
	dir := t.TempDir()
	a, err := AnonymousID("my-cli", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !idPattern.MatchString(a) {
		t.Fatalf("AnonymousID = %q, want anon_ + 64 hex", a)
	}
	// HMAC-SHA256 keyed by the service name over the machine ID, computed
	// here from the definition.
	mac := hmac.New(sha256.New, []byte("my-cli"))
	mac.Write([]byte(strings.TrimSpace(raw)))
	if want := "anon_" + hex.EncodeToString(mac.Sum(nil)); a != want {
		t.Fatalf("AnonymousID = %q, want %q", a, want)
	}
	if strings.Contains(a, raw) {
		t.Fatal("the raw machine ID leaks into the user ID")
	}
	again, _ := AnonymousID("my-cli", dir)
	other, _ := AnonymousID("other-tool", dir)
	if again != a || other == a || !idPattern.MatchString(other) {
		t.Fatalf("stable %q/%q, other tool %q", a, again, other)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a readable machine ID must not create files: %v", entries)
	}
	// Not the library's ProtectedID (key and message swapped).
	if p, err := machineid.ProtectedID("my-cli"); err == nil && "anon_"+p == a {
		t.Fatal("user ID equals ProtectedID: key and message are swapped")
	}
}

func noMachineID() (string, error) { return "", errors.New("no machine id here") }

func TestAnonymousIDFallback(t *testing.T) {
	dir := t.TempDir()
	a, err := anonymousID("my-cli", dir, noMachineID)
	if err != nil {
		t.Fatal(err)
	}
	if !idPattern.MatchString(a) {
		t.Fatalf("fallback ID %q", a)
	}
	path := filepath.Join(dir, machineIDFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("machine_id mode %v, want 0600", fi.Mode().Perm())
	}
	stored, _ := os.ReadFile(path)
	if strings.Contains(a, strings.TrimSpace(string(stored))) {
		t.Fatal("the stored random ID leaks into the user ID")
	}
	b, _ := anonymousID("my-cli", dir, noMachineID)
	if a != b {
		t.Fatalf("fallback not stable: %q then %q", a, b)
	}
	// An empty machine ID (an empty /etc/machine-id in a container) also
	// falls back.
	c, _ := anonymousID("my-cli", dir, func() (string, error) { return " \n", nil })
	if c != a {
		t.Fatalf("empty machine ID: %q, want the stored fallback %q", c, a)
	}
	d, _ := anonymousID("my-cli", t.TempDir(), noMachineID)
	if d == a {
		t.Fatal("two machines (directories) got the same random ID")
	}
	// A damaged file is replaced by a new ID.
	os.WriteFile(path, []byte("not an id"), 0o600)
	e, err := anonymousID("my-cli", dir, noMachineID)
	if err != nil || e == a || !idPattern.MatchString(e) {
		t.Fatalf("damaged file: %q, %v", e, err)
	}
	if _, err := anonymousID("", dir, noMachineID); err == nil {
		t.Fatal("no service name accepted")
	}
}

func TestAnonymousIDFallbackConcurrentFirstRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fresh")
	ids := make([]string, 16)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := anonymousID("my-cli", dir, noMachineID)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent first runs disagree: %q", ids)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}
