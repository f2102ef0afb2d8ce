package privacy

import (
	"os"
	"strings"
	"testing"
)

func TestScrubberLocalNames(t *testing.T) {
	sc := Scrubber{Home: "/var/lib/jenkins", Hostname: "build-box-7.corp.example", Username: "jenkins"}
	for _, tc := range []struct{ in, want string }{
		{"open /var/lib/jenkins/workspace/app/go.mod", "open ~/workspace/app/go.mod"},
		{"/var/lib/jenkins", "~"},
		{"/var/lib/jenkinsfile", "/var/lib/jenkinsfile"}, // not the home directory
		{"connect to build-box-7.corp.example:22", "connect to <hostname>:22"},
		{"host BUILD-BOX-7 is slow", "host <hostname> is slow"},
		{"build-box-70", "build-box-70"},
		{"/opt/jenkins/cache", "/opt/<user>/cache"},
		{"jenkins pipeline", "jenkins pipeline"}, // not a path segment
		{"bob@example.com in /home/bob", "<email> in ~"},
		{"build", "build"},
	} {
		if got := sc.Scrub(tc.in); got != tc.want {
			t.Errorf("Scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := sc.ScrubValue(map[string]any{"dir": "/var/lib/jenkins/x"}); got.(map[string]any)["dir"] != "~/x" {
		t.Errorf("ScrubValue: %v", got)
	}
	// Names equal to marker words are ignored, keeping Scrub idempotent.
	odd := Scrubber{Hostname: "secret", Username: "user"}
	once := odd.Scrub("token=abc on secret in /srv/user/x")
	if odd.Scrub(once) != once {
		t.Errorf("not idempotent: %q", once)
	}
	if (Scrubber{}).Scrub("/home/x/y") != "~/y" {
		t.Error("zero Scrubber differs from Scrub")
	}
}

func TestLocalScrubber(t *testing.T) {
	sc := LocalScrubber()
	home, err := os.UserHomeDir()
	if err != nil || len(home) < 2 {
		t.Skip("no home directory")
	}
	if got := sc.Scrub("open " + home + "/project/x.go"); strings.Contains(got, home) {
		t.Fatalf("home directory %q left in %q", home, got)
	}
	if host, err := os.Hostname(); err == nil && len(host) >= 3 && !strings.EqualFold(host, "localhost") && !markerWords[strings.ToLower(host)] {
		if got := sc.Scrub("on " + host + " now"); strings.Contains(got, host) {
			t.Fatalf("host name left in %q", got)
		}
	}
}
