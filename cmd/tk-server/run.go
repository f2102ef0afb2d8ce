package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/telemetry-kit/telemetry-kit/server"
	"github.com/telemetry-kit/telemetry-kit/server/dashboard"
	"github.com/telemetry-kit/telemetry-kit/server/httpapi"
	"github.com/telemetry-kit/telemetry-kit/server/postgres"
	"github.com/telemetry-kit/telemetry-kit/wire"
)

// errUsage marks an error of the command line: an unknown command or
// flag, an argument missing or too many. Such errors exit 2; errUsage
// itself means that what was wrong has been printed already.
var errUsage = errors.New("usage")

// usageError is an error of the command line.
type usageError struct{ err error }

func (e usageError) Error() string        { return e.err.Error() }
func (e usageError) Unwrap() error        { return e.err }
func (e usageError) Is(target error) bool { return target == errUsage }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

const rootHelp = "tk-server is telemetry-kit's self-hosted collection server.\n\n" + envHelp

// envHelp explains the variables shown in brackets after the flags.
const envHelp = `A flag shown with a variable in brackets, e.g. --database-url [TK_DATABASE_URL],
can also be set by that environment variable; the command line wins over the
variable.`

// options are all settings; each command registers the ones it uses.
type options struct {
	databaseURL     string
	queryURL        string
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
	queryTimeout    time.Duration
	queryRate       float64
	queryBurst      int
	corsOrigins     string
	trustedProxies  string
	maxQueries      int
	maxExports      int
	capsNewPerDay   int
	jsonOut         bool
	project         string
	kind            string
	yes             bool
}

// app is what the commands share: the process's environment and output.
type app struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	// env holds each command's flags with a variable.
	env map[*cobra.Command]*envFlags
	// started is set once the command line is parsed and a command
	// begins: errors before are errors of the command line.
	started bool
}

// run is the whole program: main only wires it to the process. It prints
// errors to stderr; exitCode gives the exit status of the one returned.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	a := &app{getenv: getenv, stdout: stdout, stderr: stderr, env: map[*cobra.Command]*envFlags{}}
	root := a.rootCmd()
	if args == nil {
		args = []string{} // not os.Args
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	switch {
	case err == nil:
		return nil
	case err == errUsage:
	case !a.started || errors.Is(err, errUsage):
		if cmd == nil {
			cmd = root
		}
		fmt.Fprintf(stderr, "tk-server: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		if !errors.Is(err, errUsage) {
			err = usageError{err}
		}
	default:
		fmt.Fprintln(stderr, "tk-server:", err)
	}
	return err
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tk-server",
		Short:         "The self-hosted collection server of telemetry-kit",
		Long:          rootHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE:          a.showUsage,
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			a.started = true
			if f := a.env[c]; f != nil && len(f.errs) > 0 {
				return errors.Join(f.errs...)
			}
			return nil
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(flagError)
	// A command with subcommands runs only to say that one is missing:
	// its usage shows the subcommands, not a line of its own.
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(),
		"{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))

	project := &cobra.Command{
		Use:   "project",
		Short: "Create and list projects",
		Args:  subcommand,
		RunE:  a.showUsage,
	}
	project.AddCommand(a.projectCreateCmd(), a.projectListCmd(), a.projectRetentionCmd(), a.projectDeleteCmd())
	key := &cobra.Command{
		Use:   "key",
		Short: "Create, list and revoke keys",
		Args:  subcommand,
		RunE:  a.showUsage,
	}
	key.AddCommand(a.keyCreateCmd(), a.keyListCmd(), a.keyRevokeCmd())
	user := &cobra.Command{
		Use:   "user",
		Short: "Erase a user's data",
		Args:  subcommand,
		RunE:  a.showUsage,
	}
	user.AddCommand(a.userDeleteCmd())
	root.AddCommand(a.serveCmd(), a.migrateCmd(), a.maintainCmd(), a.healthCmd(), project, key, user)
	// completion, like project and key, needs one of its subcommands.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args, c.RunE = subcommand, a.showUsage
		}
	}
	return root
}

// showUsage prints the help of a command run without one of its
// subcommands to stderr and fails with errUsage.
func (a *app) showUsage(c *cobra.Command, _ []string) error {
	c.SetOut(a.stderr)
	c.Help()
	return errUsage
}

// flagError names the flag meant by a single-dash long flag, such as
// -addr for --addr.
func flagError(c *cobra.Command, err error) error {
	var ne *pflag.NotExistError
	if errors.As(err, &ne) && ne.GetSpecifiedShortnames() != "" {
		name, _, _ := strings.Cut(ne.GetSpecifiedShortnames(), "=")
		if c.Flags().Lookup(name) != nil {
			return usagef("%v (flags have two dashes: --%s)", err, name)
		}
	}
	return usageError{err}
}

// subcommand rejects an argument that names no subcommand of c.
func subcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := ""
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		hint = "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return usagef("unknown command %q for %q%s", args[0], c.CommandPath(), hint)
}

// positional accepts exactly the positional arguments names.
func positional(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef("missing %s", names[len(args)])
		}
		if len(args) > len(names) {
			return usagef("unexpected argument %q", args[len(names)])
		}
		return nil
	}
}

// command returns a leaf command: use is its name and what follows it in
// its usage line, args checks its positional arguments, flags registers
// its flags and run runs it.
func (a *app) command(use, short string, args cobra.PositionalArgs, flags func(f *envFlags), run func(c *cobra.Command, args []string) error) *cobra.Command {
	c := &cobra.Command{
		Use:               use,
		Short:             short,
		Long:              short + ".\n\n" + envHelp,
		Args:              args,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              run,
	}
	f := &envFlags{fs: c.Flags(), getenv: a.getenv}
	a.env[c] = f
	flags(f)
	return c
}

func (o *options) databaseFlags(f *envFlags) {
	f.str(&o.databaseURL, "database-url", "", "PostgreSQL URL, e.g. postgres://user:pass@localhost:5432/telemetry")
}

func (a *app) migrateCmd() *cobra.Command {
	return a.maintenanceCmd("migrate", "Apply pending schema migrations", func(ctx context.Context, db *postgres.DB) error {
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		_, err := db.Maintain(ctx)
		return err
	})
}

func (a *app) maintainCmd() *cobra.Command {
	return a.maintenanceCmd("maintain", "Run the hourly maintenance now: partitions, retention window, rollup compaction, period rollups and retention counted ahead",
		func(ctx context.Context, db *postgres.DB) error {
			if pending, err := db.Pending(ctx); err != nil {
				return err
			} else if pending {
				return errors.New("the database schema is not up to date: run tk-server migrate")
			}
			if _, err := db.Maintain(ctx); err != nil {
				return err
			}
			n, err := db.CompactRollups(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "rollups of %d days compacted\n", n)
			if n, err = db.BuildPeriods(ctx); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "period rollups of %d days built\n", n)
			if n, err = db.BuildRetention(ctx); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "projects with retention counted ahead: %d\n", n)
			return nil
		})
}

// maintenanceCmd is a command that runs fn on the database, with the
// flags of the database and the retention window.
func (a *app) maintenanceCmd(name, short string, fn func(context.Context, *postgres.DB) error) *cobra.Command {
	var o options
	return a.command(name, short, positional(), func(f *envFlags) {
		o.databaseFlags(f)
		f.integer(&o.retentionDays, "retention-days", 395, "keep events this many days (sets which partitions are created)")
	}, func(c *cobra.Command, _ []string) error {
		db, err := openDB(c.Context(), &o, newLogger(a.stderr, "info"))
		if err != nil {
			return err
		}
		defer db.Close()
		return fn(c.Context(), db)
	})
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
		URL:          o.databaseURL,
		MaxConns:     int32(o.maxConns),
		Retention:    time.Duration(o.retentionDays) * 24 * time.Hour,
		Logger:       log,
		QueryTimeout: o.queryTimeout,
		Caps:         postgres.Caps{NewPerDay: o.capsNewPerDay},
	})
}

func (a *app) serveCmd() *cobra.Command {
	var o options
	c := a.command("serve", "Run the HTTP server", positional(), func(f *envFlags) {
		o.databaseFlags(f)
		f.str(&o.queryURL, "query-database-url", "", "PostgreSQL URL of a streaming replica for the query API, the dashboard's pages and exports (empty: the database)")
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
		f.duration(&o.queryTimeout, "query-timeout", postgres.DefaultQueryTimeout, "time limit for each statement of the query API and the export")
		f.float(&o.queryRate, "query-rate", 5, "query API requests per second allowed per read key (negative: no limit)")
		f.integer(&o.queryBurst, "query-burst", 20, "query API requests a read key may send at once")
		f.integer(&o.capsNewPerDay, "caps-new-per-day", 25000, "values and rollup rows a project may add on one day of arrival, whatever its events' days; raise it to import history")
		f.integer(&o.maxQueries, "max-queries", 4, "query API requests answered at once (exports included); more wait a second, then 503")
		f.integer(&o.maxExports, "max-exports", 2, "exports streaming at once, within --max-queries; more get 503")
		f.str(&o.corsOrigins, "cors-origins", "", "comma-separated origins whose pages may call the query API (\"*\": any; empty: no CORS)")
		f.str(&o.trustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDRs of the reverse proxies in front (their X-Forwarded-For names the client); empty: none")
		f.str(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	}, func(c *cobra.Command, _ []string) error {
		return serve(c.Context(), &o, a.getenv, a.stderr)
	})
	c.RegisterFlagCompletionFunc("log-level",
		cobra.FixedCompletions([]string{"debug", "info", "warn", "error"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// parsePrefixes parses a comma-separated list of addresses (each its own
// /32 or /128) and CIDRs.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(s) {
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", item)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// serve runs the HTTP server until ctx is canceled.
func serve(ctx context.Context, o *options, getenv func(string) string, stderr io.Writer) error {
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

	// Questions may go to a streaming replica; everything that writes
	// (ingest, sessions, erasures, keys, maintenance) stays on the primary.
	querier := server.Querier(db)
	if o.queryURL != "" {
		qo := *o
		qo.databaseURL = o.queryURL
		qdb, err := openDB(ctx, &qo, log)
		if err != nil {
			return fmt.Errorf("the query database: %w", err)
		}
		defer qdb.Close()
		querier = qdb
		log.Info("questions go to the query database")
	}
	proxies, err := parsePrefixes(o.trustedProxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	dash, err := dashboard.New(dashboard.Config{Keys: db, Querier: querier, Sessions: db, Rights: db, Logger: log})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	connMetrics := httpapi.NewConnMetrics(reg)
	srv, err := httpapi.New(httpapi.Config{
		Dashboard:       dash,
		Store:           db,
		Querier:         querier,
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
		QueryRateLimit:  o.queryRate,
		QueryRateBurst:  o.queryBurst,
		CORSOrigins:     splitList(o.corsOrigins),
		TrustedProxies:  proxies,
		MaxQueries:      o.maxQueries,
		MaxExports:      o.maxExports,
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

func (a *app) projectCreateCmd() *cobra.Command {
	var o options
	return a.command("create NAME", "Create a project with a write and a read key", positional("NAME"), func(f *envFlags) {
		o.databaseFlags(f)
		f.fs.BoolVar(&o.jsonOut, "json", false, "print JSON")
	}, func(c *cobra.Command, args []string) error {
		ctx := c.Context()
		db, err := openDB(ctx, &o, slog.New(slog.DiscardHandler))
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
		p, _, err := db.CreateProject(ctx, args[0], []server.Key{w, r})
		if err != nil {
			return err
		}
		if o.jsonOut {
			return json.NewEncoder(a.stdout).Encode(map[string]any{
				"project_id": p.ID, "name": p.Name, "write_key": wk, "read_key": rk,
			})
		}
		fmt.Fprintf(a.stdout, "project_id: %d\nname:       %s\nwrite_key:  %s\nread_key:   %s\n", p.ID, p.Name, wk, rk)
		fmt.Fprintln(a.stderr, "The keys are shown only now: store them safely.")
		return nil
	})
}

func (a *app) projectListCmd() *cobra.Command {
	var o options
	return a.command("list", "List projects", positional(), func(f *envFlags) {
		o.databaseFlags(f)
		f.fs.BoolVar(&o.jsonOut, "json", false, "print JSON")
	}, func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		db, err := openDB(ctx, &o, slog.New(slog.DiscardHandler))
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
				out = append(out, map[string]any{"project_id": p.ID, "name": p.Name, "created_at": p.CreatedAt.UTC(),
					"retention_days": p.RetentionDays})
			}
			return json.NewEncoder(a.stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tRETENTION")
		for _, p := range ps {
			retention := "server's"
			if p.RetentionDays > 0 {
				retention = fmt.Sprintf("%d days", p.RetentionDays)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", p.ID, p.Name, p.CreatedAt.UTC().Format(time.RFC3339), retention)
		}
		return tw.Flush()
	})
}

func (a *app) projectRetentionCmd() *cobra.Command {
	var o options
	var days int
	return a.command("retention ID|NAME --days N", "Keep a project's events and per-day counts for N days (0: the server's window)",
		positional("PROJECT"), func(f *envFlags) {
			o.databaseFlags(f)
			f.fs.IntVar(&days, "days", -1, "days to keep, at most the server's --retention; 0 goes back to the server's window")
		}, func(c *cobra.Command, args []string) error {
			if days < 0 {
				return usagef("missing --days")
			}
			ctx := c.Context()
			db, pid, err := openProject(ctx, &o, args[0])
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.SetRetention(ctx, pid, days); err != nil {
				return err
			}
			if days == 0 {
				fmt.Fprintf(a.stdout, "project %d keeps its data for the server's window\n", pid)
			} else {
				fmt.Fprintf(a.stdout, "project %d keeps its events and per-day counts for %d days: the next maintenance (hourly, or tk-server maintain) deletes what is older\n", pid, days)
			}
			return nil
		})
}

func (a *app) projectDeleteCmd() *cobra.Command {
	var o options
	return a.command("delete ID|NAME --yes", "Delete a project: its events, rollups and keys, at once and for good",
		positional("PROJECT"), func(f *envFlags) {
			o.databaseFlags(f)
			f.fs.BoolVar(&o.yes, "yes", false, "confirm: without it nothing is deleted")
			f.fs.BoolVar(&o.jsonOut, "json", false, "print JSON")
		}, func(c *cobra.Command, args []string) error {
			if !o.yes {
				return usagef("deleting a project cannot be undone: add --yes to delete %s", args[0])
			}
			ctx := c.Context()
			db, pid, err := openProject(ctx, &o, args[0])
			if err != nil {
				return err
			}
			defer db.Close()
			removed, err := db.DeleteProject(ctx, pid, "")
			if err != nil {
				return err
			}
			if o.jsonOut {
				return json.NewEncoder(a.stdout).Encode(map[string]any{"project_id": pid, "removed": removed})
			}
			fmt.Fprintf(a.stdout, "project %d deleted: %d events, %d keys and %d other rows; the audit log keeps the record\n",
				pid, removed["events"], removed["api_keys"], total(removed)-removed["events"]-removed["api_keys"])
			return nil
		})
}

// total sums the counts of m.
func total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// openProject opens the database and resolves a project id or name in it.
func openProject(ctx context.Context, o *options, project string) (*postgres.DB, int64, error) {
	db, err := openDB(ctx, o, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, 0, err
	}
	pid, err := resolveProject(ctx, db, project)
	if err != nil {
		db.Close()
		return nil, 0, err
	}
	return db, pid, nil
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

func (a *app) keyCreateCmd() *cobra.Command {
	var o options
	c := a.command("create --project ID|NAME", "Add a key to a project and print it", positional(), func(f *envFlags) {
		o.databaseFlags(f)
		f.fs.StringVar(&o.project, "project", "", "project id or name (required)")
		f.fs.StringVar(&o.kind, "kind", "write", "key kind: write (ingest), read (queries, export, dashboard) or admin (read, erase users' data)")
		f.fs.BoolVar(&o.jsonOut, "json", false, "print JSON")
	}, func(c *cobra.Command, _ []string) error {
		if o.project == "" {
			return usagef("missing --project")
		}
		ctx := c.Context()
		db, pid, err := openProject(ctx, &o, o.project)
		if err != nil {
			return err
		}
		defer db.Close()
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
			return json.NewEncoder(a.stdout).Encode(m)
		}
		fmt.Fprintf(a.stdout, "key_id: %d\nkind:   %s\nkey:    %s\n", k.ID, k.Kind, s)
		return nil
	})
	c.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"write", "read", "admin"}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

func (a *app) userDeleteCmd() *cobra.Command {
	var o options
	return a.command("delete --project ID|NAME anon_…", "Erase a user's events, per-user rows and sketch entries, now",
		positional("USER_ID"), func(f *envFlags) {
			o.databaseFlags(f)
			f.fs.StringVar(&o.project, "project", "", "project id or name (required)")
			f.fs.BoolVar(&o.jsonOut, "json", false, "print JSON")
		}, func(c *cobra.Command, args []string) error {
			if o.project == "" {
				return usagef("missing --project")
			}
			user, ok := wire.ParseUserID(args[0])
			if !ok {
				return usagef("bad user id %q: want anon_ and 64 lower-case hex digits", args[0])
			}
			ctx := c.Context()
			db, pid, err := openProject(ctx, &o, o.project)
			if err != nil {
				return err
			}
			defer db.Close()
			e, err := db.EraseUser(ctx, server.EraseRequest{ProjectID: pid, UserID: user})
			if err != nil {
				return err
			}
			if o.jsonOut {
				return json.NewEncoder(a.stdout).Encode(e)
			}
			fmt.Fprintf(a.stdout, "erased: %d events, %d per-user rows, the user's hash from %d sketches\n"+
				"events recorded before %s that arrive later will be discarded\n",
				e.Events, e.UserRows, e.Sketches, e.ErasedBefore.UTC().Format(time.RFC3339))
			return nil
		})
}

func (a *app) keyListCmd() *cobra.Command {
	var o options
	return a.command("list", "List keys: id, project, kind, prefix, created, revoked", positional(), func(f *envFlags) {
		o.databaseFlags(f)
		f.fs.StringVar(&o.project, "project", "", "only the keys of this project (id or name)")
		f.fs.BoolVar(&o.jsonOut, "json", false, "print JSON")
	}, func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		db, err := openDB(ctx, &o, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer db.Close()
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
			return json.NewEncoder(a.stdout).Encode(out)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
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
	})
}

func (a *app) keyRevokeCmd() *cobra.Command {
	var o options
	return a.command("revoke KEY_ID", "Revoke a key; the next request with it gets 403", positional("KEY_ID"), func(f *envFlags) {
		o.databaseFlags(f)
	}, func(c *cobra.Command, args []string) error {
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return fmt.Errorf("bad key id %q", args[0])
		}
		ctx := c.Context()
		db, err := openDB(ctx, &o, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer db.Close()
		if err := db.RevokeKey(ctx, id); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "key %d revoked\n", id)
		return nil
	})
}
