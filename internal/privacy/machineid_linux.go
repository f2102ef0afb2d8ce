package privacy

import (
	"strings"

	"github.com/telemetry-kit/telemetry-kit/internal/fsutil"
)

// readMachineID reads the machine ID from the files
// github.com/denisbrodbeck/machineid reads on Linux, in the same order, with
// the same result, but without registering them with the runtime's poller:
// this runs in every start of a command line tool.
func readMachineID() (string, error) {
	b, err := fsutil.ReadFile("/var/lib/dbus/machine-id")
	if err != nil {
		b, err = fsutil.ReadFile("/etc/machine-id")
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
