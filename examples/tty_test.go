package examples_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/creack/pty"
)

// linkTTYRun makes the command ttyrun, this test binary under another
// name, in dir/tty.
func linkTTYRun(dir string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tty"), 0o755); err != nil {
		return err
	}
	return os.Symlink(exe, filepath.Join(dir, "tty", "ttyrun"))
}

// ttyrun runs args[0] with its stdin and stderr on a new terminal (a
// pseudo-terminal) and its stdout on ours, copies what it writes to the
// terminal to our stderr, and returns its exit code: a script checks what
// a person at a terminal would see, `exec ttyrun $TOOL build`.
func ttyrun(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: ttyrun command [args...]")
		return 2
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttyrun:", err)
		return 2
	}
	defer ptmx.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, os.Stdout, tty
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "ttyrun:", err)
		return 2
	}
	tty.Close()
	copied := make(chan struct{})
	go func() {
		// Read until the terminal closes: EIO once the command has exited.
		_, _ = io.Copy(os.Stderr, ptmx)
		close(copied)
	}()
	err = cmd.Wait()
	<-copied
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ttyrun:", err)
		return 2
	}
	return 0
}
