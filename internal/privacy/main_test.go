package privacy

import (
	"fmt"
	"os"
	"testing"

	"github.com/telemetry-kit/telemetry-kit/consent"
)

// childEnv switches the test binary into a child process that runs
// Ensure with the real stdin, stderr, environment and terminal detection
// (see prompt_pty_test.go).
const childEnv = "CONSENT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "ensure" {
		d := Ensure(Options{
			Service: "pty-tool",
			Mode:    consent.OptIn,
			Dir:     os.Getenv("CONSENT_TEST_DIR"),
		})
		fmt.Printf("RESULT enabled=%v source=%d\n", d.Enabled, int(d.Source))
		os.Exit(0)
	}
	os.Exit(m.Run())
}
