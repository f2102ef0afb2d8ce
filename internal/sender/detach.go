package sender

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Detach starts exe as a detached process and does not wait for it: its
// argv is just argv0, its environment env, its standard streams the null
// device, and it runs in a session (process group) of its own, so a shell
// or a pipe reading the parent's output never waits for it and a signal to
// the parent's terminal does not reach it. Detach returns the child's pid.
func Detach(exe, argv0 string, env []string) (int, error) {
	cmd := &exec.Cmd{
		Path: exe,
		Args: []string{argv0},
		Env:  env,
		// Nil Stdin, Stdout and Stderr are the null device: the child holds
		// none of the parent's pipes open.
	}
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("upload: start sender: %w", err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	return pid, nil
}

// WithEnv returns env with name set to value, replacing any earlier setting.
func WithEnv(env []string, name, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && k == name {
			continue
		}
		out = append(out, kv)
	}
	return append(out, name+"="+value)
}

// Executable is the path of the running program, for [Detach].
func Executable() (string, error) { return os.Executable() }
