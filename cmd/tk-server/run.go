package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
)

// errUsage is returned after the usage text was printed for a bad command
// line.
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

const usage = `tk-server is telemetry-kit's self-hosted collection server.

Usage:
  tk-server serve [flags]                      run the HTTP server
  tk-server migrate [flags]                    apply pending schema migrations
  tk-server project create NAME [--json]       create a project with a write and a read key
  tk-server project list [--json]              list projects
  tk-server key create --project ID|NAME [--kind write|read] [--json]
  tk-server key list [--project ID|NAME] [--json]
  tk-server key revoke KEY_ID
  tk-server help                               show this text

Run "tk-server COMMAND --help" for a command's flags. A flag shown with a
variable in brackets, e.g. --database-url [TK_DATABASE_URL], can also be set
by that environment variable; the command line wins over the variable.
`

// options are all settings; each subcommand registers the ones it uses.
type options struct {
	databaseURL     string
	addr            string
	addrFile        string
	metricsAddr     string
	noMigrate       bool
	retentionDays   int
	rateLimit       float64
	rateBurst       int
	keyLookupRate   float64
	decodeMemory    int
	memoryLimit     int
	maxConnections  int
	idleTimeout     time.Duration
	maxConns        int
	requestTimeout  time.Duration
	shutdownTimeout time.Duration
	retryAfter      time.Duration
	logLevel        string
	jsonOut         bool
	project         string
	kind            string
}

type flagSet struct {
	*flag.FlagSet
	getenv func(string) string
	errs   []error
}

func newFlagSet(name string, stderr io.Writer, getenv func(string) string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &flagSet{FlagSet: fs, getenv: getenv}
}

func (f *flagSet) envName(name string) string {
	return "TK_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func (f *flagSet) str(p *string, name, def, help string) {
	env := f.envName(name)
	if v := f.getenv(env); v != "" {
		def = v
	}
	f.StringVar(p, name, def, help+" ["+env+"]")
}

func (f *flagSet) integer(p *int, name string, def int, help string) {
	env := f.envName(name)
	if v := f.getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = n
	}
	f.IntVar(p, name, def, help+" ["+env+"]")
}

func (f *flagSet) float(p *float64, name string, def float64, help string) {
	env := f.envName(name)
	if v := f.getenv(env); v != "" {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = n
	}
	f.Float64Var(p, name, def, help+" ["+env+"]")
}

func (f *flagSet) boolean(p *bool, name string, help string) {
	env := f.envName(name)
	def := false
	if v := f.getenv(env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = b
	}
	f.BoolVar(p, name, def, help+" ["+env+"]")
}

func (f *flagSet) duration(p *time.Duration, name string, def time.Duration, help string) {
	env := f.envName(name)
	if v := f.getenv(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = d
	}
	f.DurationVar(p, name, def, help+" ["+env+"]")
}

// parse parses args, allowing flags after positional arguments, and
// returns the positional arguments.
func (f *flagSet) parse(args []string) ([]string, error) {
	if len(f.errs) > 0 {
		return nil, errors.Join(f.errs...)
	}
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, flag.ErrHelp
			}
			return nil, errUsage
		}
		args = f.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (o *options) databaseFlags(f *flagSet) {
	f.str(&o.databaseURL, "database-url", "", "PostgreSQL URL, e.g. postgres://user:pass@localhost:5432/telemetry")
}

// run is the whole program: main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	var o options
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "serve":
		return runServe(ctx, &o, rest, getenv, stdout, stderr)
	case "migrate":
		f := newFlagSet("migrate", stderr, getenv)
		o.databaseFlags(f)
		f.integer(&o.retentionDays, "retention-days", 395, "keep events this many days (sets which partitions are created)")
		if _, err := f.parse(rest); err != nil {
			return helpOK(err)
		}
		db, err := openDB(ctx, &o, newLogger(stderr, "info"))
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		_, err = db.Maintain(ctx)
		return err
	case "project":
		return runProject(ctx, &o, rest, getenv, stdout, stderr)
	case "key":
		return runKey(ctx, &o, rest, getenv, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "tk-server: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}

func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func openDB(ctx context.Context, o *options, log *slog.Logger) (*postgres.DB, error) {
	if o.databaseURL == "" {
		return nil, errors.New("no database: set --database-url or TK_DATABASE_URL")
	}
	return postgres.Open(ctx, postgres.Config{
		URL:       o.databaseURL,
		MaxConns:  int32(o.maxConns),
		Retention: time.Duration(o.retentionDays) * 24 * time.Hour,
		Logger:    log,
	})
}

func runServe(ctx context.Context, o *options, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	f := newFlagSet("serve", stderr, getenv)
	o.databaseFlags(f)
	f.str(&o.addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	f.str(&o.addrFile, "addr-file", "", "write the bound address to this file once listening")
	f.str(&o.metricsAddr, "metrics-addr", "", "serve /metrics on this address only, not on --addr (empty: on --addr)")
	f.boolean(&o.noMigrate, "no-migrate", "do not apply pending migrations on start; refuse to start if some are pending")
	f.integer(&o.retentionDays, "retention-days", 395, "keep events this many days; older partitions are dropped")
	f.float(&o.rateLimit, "rate-limit", 200, "ingest requests per second allowed per key (negative: no limit)")
	f.integer(&o.rateBurst, "rate-burst", 0, "requests a key may send at once (0: twice --rate-limit)")
	f.float(&o.keyLookupRate, "key-lookup-rate", 100, "lookups per second, for all clients (a tenth per client address), of keys not in memory; beyond it 429 (negative: no limit)")
	f.integer(&o.decodeMemory, "decode-memory", httpapi.DefaultDecodeMemory>>20, "MiB that request bodies may hold at once; beyond it 503 (negative: no limit)")
	f.integer(&o.memoryLimit, "memory-limit", 128, "soft memory limit of the process in MiB, for the garbage collector (0: none; GOMEMLIMIT wins)")
	f.integer(&o.maxConns, "max-conns", 10, "database connection pool size")
	f.duration(&o.requestTimeout, "request-timeout", 30*time.Second, "time limit for one request")
	f.duration(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "time given to in-flight requests on SIGTERM")
	f.integer(&o.maxConnections, "max-connections", 0, "client connections open at once (0: what the limit on open files allows, less a reserve)")
	f.duration(&o.idleTimeout, "idle-timeout", 30*time.Second, "how long an idle keep-alive connection stays open")
	f.duration(&o.retryAfter, "retry-after", 5*time.Second, "Retry-After sent with 503 when the database fails")
	f.str(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	if _, err := f.parse(args); err != nil {
		return helpOK(err)
	}
	log := newLogger(stderr, o.logLevel)
	if o.retentionDays <= 0 {
		return errors.New("--retention-days must be positive")
	}
	if o.memoryLimit > 0 && getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(o.memoryLimit) << 20)
	}
	db, err := openDB(ctx, o, log)
	if err != nil {
		return err
	}
	defer db.Close()
	if !o.noMigrate {
		if err := db.Migrate(ctx); err != nil {
			return err
		}
	} else if pending, err := db.Pending(ctx); err != nil {
		return err
	} else if pending {
		return errors.New("the database schema is not up to date: run tk-server migrate, or serve without --no-migrate")
	}
	if _, err := db.Maintain(ctx); err != nil {
		return err
	}
	mctx, cancelMaint := context.WithCancel(context.Background())
	defer cancelMaint()
	go db.RunMaintenance(mctx, time.Hour)

	reg := prometheus.NewRegistry()
	connMetrics := httpapi.NewConnMetrics(reg)
	srv, err := httpapi.New(httpapi.Config{
		Store:           db,
		Logger:          log,
		Registry:        reg,
		Retention:       time.Duration(o.retentionDays) * 24 * time.Hour,
		RateLimit:       o.rateLimit,
		RateBurst:       o.rateBurst,
		KeyLookupRate:   o.keyLookupRate,
		DecodeMemory:    decodeMemory(o.decodeMemory),
		RetryAfter:      o.retryAfter,
		RequestTimeout:  o.requestTimeout,
		SeparateMetrics: o.metricsAddr != "",
	})
	if err != nil {
		return err
	}
	go srv.WatchKeys(mctx)
	var ms *http.Server
	if o.metricsAddr != "" {
		mln, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			return err
		}
		ms = &http.Server{
			Handler:           srv.MetricsHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		log.Info("metrics listening", "addr", mln.Addr().String())
		ml, err := httpapi.NewConnLimiter(httpapi.ConnLimitConfig{Max: metricsConns, Name: "metrics", Logger: log,
			Metrics: connMetrics})
		if err != nil {
			return err
		}
		go ml.Serve(ms, mln)
		defer ms.Close()
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       o.requestTimeout,
		WriteTimeout:      o.requestTimeout + 5*time.Second,
		IdleTimeout:       o.idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().String()
	log.Info("listening", "addr", addr)
	if o.addrFile != "" {
		tmp := o.addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
			ln.Close()
			return err
		}
		if err := os.Rename(tmp, o.addrFile); err != nil {
			ln.Close()
			return err
		}
	}
	// The reserve of file descriptors: the database pool, the key watch,
	// the metrics listener and its connections, and the runtime's own.
	limiter, err := httpapi.NewConnLimiter(httpapi.ConnLimitConfig{Max: o.maxConnections,
		Reserve: httpapi.DefaultConnReserve + o.maxConns + metricsConns, Logger: log, Metrics: connMetrics})
	if err != nil {
		ln.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- limiter.Serve(hs, ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", o.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// Requests still in flight are cut off: not acknowledged, so
		// their clients send them again. Exit status 1 says so.
		hs.Close()
		log.Error("shutdown timed out: requests in flight were cut off", "timeout", o.shutdownTimeout)
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// metricsConns is the connection cap of the --metrics-addr listener.
const metricsConns = 16

// decodeMemory turns --decode-memory (MiB, negative: no limit) into
// httpapi.Config.DecodeMemory.
func decodeMemory(mib int) int64 {
	if mib < 0 {
		return -1
	}
	return max(int64(mib)<<20, 1<<20)
}

func runProject(ctx context.Context, o *options, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	sub := args[0]
	f := newFlagSet("project "+sub, stderr, getenv)
	o.databaseFlags(f)
	f.BoolVar(&o.jsonOut, "json", false, "print JSON")
	pos, err := f.parse(args[1:])
	if err != nil {
		return helpOK(err)
	}
	switch sub {
	case "create":
		if len(pos) != 1 {
			fmt.Fprintln(stderr, "usage: tk-server project create NAME [--json]")
			return errUsage
		}
		db, err := openDB(ctx, o, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		wk, w, err := server.NewKey(server.KeyWrite)
		if err != nil {
			return err
		}
		rk, r, err := server.NewKey(server.KeyRead)
		if err != nil {
			return err
		}
		p, _, err := db.CreateProject(ctx, pos[0], []server.Key{w, r})
		if err != nil {
			return err
		}
		if o.jsonOut {
			return json.NewEncoder(stdout).Encode(map[string]any{
				"project_id": p.ID, "name": p.Name, "write_key": wk, "read_key": rk,
			})
		}
		fmt.Fprintf(stdout, "project_id: %d\nname:       %s\nwrite_key:  %s\nread_key:   %s\n", p.ID, p.Name, wk, rk)
		fmt.Fprintln(stderr, "The keys are shown only now: store them safely.")
		return nil
	case "list":
		db, err := openDB(ctx, o, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer db.Close()
		ps, err := db.Projects(ctx)
		if err != nil {
			return err
		}
		if o.jsonOut {
			out := make([]map[string]any, 0, len(ps))
			for _, p := range ps {
				out = append(out, map[string]any{"project_id": p.ID, "name": p.Name, "created_at": p.CreatedAt.UTC()})
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED")
		for _, p := range ps {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", p.ID, p.Name, p.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	default:
		fmt.Fprintf(stderr, "tk-server: unknown project command %q\n\n%s", sub, usage)
		return errUsage
	}
}

// resolveProject accepts a project id or name.
func resolveProject(ctx context.Context, db *postgres.DB, s string) (int64, error) {
	if id, err := strconv.ParseInt(s, 10, 64); err == nil {
		return id, nil
	}
	p, err := db.ProjectByName(ctx, s)
	return p.ID, err
}

func keyJSON(k server.Key) map[string]any {
	m := map[string]any{"key_id": k.ID, "project_id": k.ProjectID, "kind": k.Kind, "prefix": k.Prefix,
		"created_at": k.CreatedAt.UTC(), "revoked_at": nil}
	if k.RevokedAt != nil {
		m["revoked_at"] = k.RevokedAt.UTC()
	}
	return m
}

func runKey(ctx context.Context, o *options, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	sub := args[0]
	f := newFlagSet("key "+sub, stderr, getenv)
	o.databaseFlags(f)
	f.BoolVar(&o.jsonOut, "json", false, "print JSON")
	f.StringVar(&o.project, "project", "", "project id or name")
	f.StringVar(&o.kind, "kind", "write", "key kind: write or read")
	pos, err := f.parse(args[1:])
	if err != nil {
		return helpOK(err)
	}
	db, err := openDB(ctx, o, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	switch sub {
	case "create":
		if o.project == "" || len(pos) != 0 {
			fmt.Fprintln(stderr, "usage: tk-server key create --project ID|NAME [--kind write|read] [--json]")
			return errUsage
		}
		pid, err := resolveProject(ctx, db, o.project)
		if err != nil {
			return err
		}
		s, k, err := server.NewKey(server.KeyKind(o.kind))
		if err != nil {
			return err
		}
		k.ProjectID = pid
		if k, err = db.CreateKey(ctx, k); err != nil {
			return err
		}
		if o.jsonOut {
			m := keyJSON(k)
			m["key"] = s
			return json.NewEncoder(stdout).Encode(m)
		}
		fmt.Fprintf(stdout, "key_id: %d\nkind:   %s\nkey:    %s\n", k.ID, k.Kind, s)
		return nil
	case "list":
		var pid int64
		if o.project != "" {
			if pid, err = resolveProject(ctx, db, o.project); err != nil {
				return err
			}
		}
		keys, err := db.Keys(ctx, pid)
		if err != nil {
			return err
		}
		if o.jsonOut {
			out := make([]map[string]any, 0, len(keys))
			for _, k := range keys {
				out = append(out, keyJSON(k))
			}
			return json.NewEncoder(stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tPROJECT\tKIND\tPREFIX\tCREATED\tREVOKED")
		for _, k := range keys {
			rev := "-"
			if k.RevokedAt != nil {
				rev = k.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s…\t%s\t%s\n", k.ID, k.ProjectID, k.Kind, k.Prefix,
				k.CreatedAt.UTC().Format(time.RFC3339), rev)
		}
		return tw.Flush()
	case "revoke":
		if len(pos) != 1 {
			fmt.Fprintln(stderr, "usage: tk-server key revoke KEY_ID")
			return errUsage
		}
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil {
			return fmt.Errorf("bad key id %q", pos[0])
		}
		if err := db.RevokeKey(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "key %d revoked\n", id)
		return nil
	default:
		fmt.Fprintf(stderr, "tk-server: unknown key command %q\n\n%s", sub, usage)
		return errUsage
	}
}
