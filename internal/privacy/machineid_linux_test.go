package privacy

import (
	"testing"

	"github.com/denisbrodbeck/machineid"
)

// On Linux the machine ID is read without the library; it must be the
// library's answer.
func TestReadMachineIDMatchesLibrary(t *testing.T) {
	want, werr := machineid.ID()
	got, err := readMachineID()
	if (err == nil) != (werr == nil) || got != want {
		t.Fatalf("readMachineID = %q, %v; machineid.ID = %q, %v", got, err, want, werr)
	}
}
