package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Cluster is a private PostgreSQL cluster in a temporary directory.
type Cluster struct {
	URL  string // postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
	Port int
	dir  string
	bin  string
	asPG bool // run the tools as the postgres OS user (we are root)
	tb   testing.TB
}

// findBin returns the directory holding initdb and pg_ctl.
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	// The newest major version: Glob sorts its matches, and the versions
	// that still have packages all have two digits.
	if matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	return "", errors.New("initdb not found in PATH or /usr/lib/postgresql/*/bin")
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// noCluster skips the test for want of a throwaway cluster, or fails it
// under CI (CI set), where the tests that need one must run.
func noCluster(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf(format, args...)
	}
	tb.Skipf(format, args...)
}

// StartCluster initialises and starts a throwaway cluster on a free port,
// stopped and removed when the test ends. It skips the test when initdb is
// not installed. As root it runs the PostgreSQL tools as the postgres user.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin, err := findBin()
	if err != nil {
		noCluster(tb, "pgtest: no throwaway cluster: %v (install PostgreSQL server binaries)", err)
	}
	c := &Cluster{bin: bin, tb: tb, asPG: os.Geteuid() == 0}
	base := c.baseDir()
	c.dir = filepath.Join(base, "data")
	if out, err := c.command("initdb", "-D", c.dir, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	c.Port = port
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	tb.Cleanup(func() { _ = c.stop("immediate") })
	c.Start()
	return c
}

// baseDir makes the directory of a cluster's data and socket, owned by the
// postgres user when the tools run as it.
func (c *Cluster) baseDir() string {
	tb := c.tb
	if !c.asPG {
		return tb.TempDir()
	}
	pg, err := user.Lookup("postgres")
	if err != nil {
		noCluster(tb, "pgtest: running as root and no postgres user to run initdb as")
	}
	// TempDir is private to root: make a directory postgres can own.
	base, err := os.MkdirTemp("", "tk-pgcluster-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(base) })
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	if err := os.Chown(base, uid, gid); err != nil {
		tb.Fatal(err)
	}
	return base
}

// Standby makes a streaming replica of the cluster with pg_basebackup
// (hot standby, following the primary), starts it on a free port and
// returns it; it is stopped and removed when the test ends.
func (c *Cluster) Standby() *Cluster {
	c.tb.Helper()
	s := &Cluster{bin: c.bin, tb: c.tb, asPG: c.asPG}
	s.dir = filepath.Join(s.baseDir(), "data")
	if out, err := s.command("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "postgres",
		"-D", s.dir, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync").CombinedOutput(); err != nil {
		c.tb.Fatalf("pgtest: pg_basebackup: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		c.tb.Fatal(err)
	}
	s.Port = port
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	c.tb.Cleanup(func() { _ = s.stop("immediate") })
	s.Start()
	return s
}

func (c *Cluster) command(tool string, args ...string) *exec.Cmd {
	path := filepath.Join(c.bin, tool)
	if _, err := os.Stat(path); err != nil {
		// Not beside initdb (some installs link only the server tools
		// there): the server's own directory, else PATH.
		if matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + tool); len(matches) > 0 {
			path = matches[len(matches)-1]
		} else if p, err := exec.LookPath(tool); err == nil {
			path = p
		}
	}
	if c.asPG {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

// Start starts the cluster and waits until it accepts connections.
func (c *Cluster) Start() {
	c.tb.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=on", c.Port, filepath.Dir(c.dir))
	cmd := c.command("pg_ctl", "-D", c.dir, "-l", filepath.Join(filepath.Dir(c.dir), "log"), "-o", opts, "-w", "-t", "60", "start")
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(filepath.Dir(c.dir), "log"))
		c.tb.Fatalf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		conn, err := connect(ctx, c.URL)
		if err == nil {
			conn.Close(ctx)
			return
		}
		if ctx.Err() != nil {
			c.tb.Fatalf("pgtest: cluster did not come up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the cluster at once (pg_ctl -m immediate: like a crash,
// committed transactions survive through the WAL).
func (c *Cluster) Stop() {
	c.tb.Helper()
	if err := c.stop("immediate"); err != nil {
		c.tb.Fatalf("pgtest: pg_ctl stop: %v", err)
	}
}

func (c *Cluster) stop(mode string) error {
	out, err := c.command("pg_ctl", "-D", c.dir, "-m", mode, "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}
