//go:build !unix && !windows

package sender

import "os/exec"

func detach(*exec.Cmd) {}
