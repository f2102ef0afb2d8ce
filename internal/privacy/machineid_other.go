//go:build !linux

package privacy

import "github.com/denisbrodbeck/machineid"

// readMachineID reads the operating system's machine ID.
var readMachineID = machineid.ID
