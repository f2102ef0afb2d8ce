package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/telemetry-kit/telemetry-kit/server"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Config configures [Open]. Its zero value, with a URL, is usable.
type Config struct {
	// URL is the database URL or DSN, e.g.
	// postgres://user@host:5432/telemetry?sslmode=disable. Required.
	URL string
	// MaxConns is the pool size. Zero means 10.
	MaxConns int32
	// ConnectTimeout bounds each connection attempt unless the URL sets
	// connect_timeout. Zero means 3 seconds.
	ConnectTimeout time.Duration
	// Retention is how long events are kept. Zero means
	// [server.DefaultRetention].
	Retention time.Duration
	// Logger receives maintenance logs. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// QueryTimeout bounds each statement of the query API and the export,
	// so that no query holds the database. Zero means
	// [DefaultQueryTimeout].
	QueryTimeout time.Duration
	// Caps are the cardinality caps of the rollups (see [Caps]); each
	// zero field means its default.
	Caps Caps
}

// DB is the PostgreSQL store.
type DB struct {
	pool *pgxpool.Pool
	cfg  Config
	log  *slog.Logger

	caps Caps
	adm  admissions
	// admQueues holds, per project, the requests waiting for the next
	// admission (caps.go); a project is in it while one is at work.
	admMu     sync.Mutex
	admQueues map[int64][]*admitting
	// admissionTxs counts the transactions of admissions (caps.go).
	admissionTxs atomic.Int64

	groupMu sync.Mutex
	groups  groups
}

var (
	_ server.Store     = (*DB)(nil)
	_ server.KeyLister = (*DB)(nil)
)

// Open creates a connection pool. It does not connect: a database that is
// down at start is reported by the first query, and the pool reconnects by
// itself when the database comes back.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.URL == "" {
		return nil, errors.New("postgres: no database URL")
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 10
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 3 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = server.DefaultRetention
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = DefaultQueryTimeout
	}
	pc.MaxConns = cfg.MaxConns
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	pc.HealthCheckPeriod = 5 * time.Second
	pc.ConnConfig.BuildContextWatcherHandler = cancelOnDone
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := &DB{pool: pool, cfg: cfg, log: cfg.Logger, caps: cfg.Caps.withDefaults()}
	db.adm.seed = maphash.MakeSeed()
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() { db.pool.Close() }

// Pool returns the underlying pool, for tools and tests.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.pool.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// cancelOnDone is what a connection does when the context of its work
// ends: it asks PostgreSQL to cancel the query (a transaction waiting for
// a lock then rolls back rather than committing later), and gives up on
// the connection if PostgreSQL does not answer within a second.
func cancelOnDone(c *pgconn.PgConn) ctxwatch.Handler {
	return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
}

// Migrate applies the pending schema migrations, holding a PostgreSQL
// advisory lock so that servers starting together migrate once.
func (db *DB) Migrate(ctx context.Context) error {
	p, closeDB, err := db.migrations()
	if err != nil {
		return err
	}
	defer closeDB()
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for _, r := range res {
		db.log.Info("migration applied", "version", r.Source.Version, "path", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// Pending reports whether the database lacks migrations this binary has.
func (db *DB) Pending(ctx context.Context) (bool, error) {
	p, closeDB, err := db.migrations()
	if err != nil {
		return false, err
	}
	defer closeDB()
	pending, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("postgres: migrations: %w", err)
	}
	return pending, nil
}

// migrations returns a goose provider of the embedded migrations on db's
// pool, and a function that releases it.
func (db *DB) migrations() (*goose.Provider, func(), error) {
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		sqlDB.Close()
		return nil, nil, err
	}
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		sqlDB.Close()
		return nil, nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		sqlDB.Close()
		return nil, nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	return p, func() { sqlDB.Close() }, nil
}
