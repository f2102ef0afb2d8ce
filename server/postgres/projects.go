package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// CreateProject creates a project and stores the given keys for it, in one
// transaction. The keys' ProjectID, ID and CreatedAt are filled in.
func (db *DB) CreateProject(ctx context.Context, name string, keys []server.Key) (server.Project, []server.Key, error) {
	var p server.Project
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO projects (name) VALUES ($1) RETURNING id, name, created_at`, name).
			Scan(&p.ID, &p.Name, &p.CreatedAt)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return fmt.Errorf("project %q: %w", name, ErrExists)
		}
		if err != nil {
			return err
		}
		for i := range keys {
			keys[i].ProjectID = p.ID
			if err := insertKey(ctx, tx, &keys[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return server.Project{}, nil, fmt.Errorf("postgres: create project: %w", err)
	}
	return p, keys, nil
}

// Projects lists the projects by id.
func (db *DB) Projects(ctx context.Context) ([]server.Project, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, name, created_at, coalesce(retention_days, 0) FROM projects ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: projects: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (server.Project, error) {
		var p server.Project
		err := row.Scan(&p.ID, &p.Name, &p.CreatedAt, &p.RetentionDays)
		return p, err
	})
}

// ProjectByName finds a project by name.
func (db *DB) ProjectByName(ctx context.Context, name string) (server.Project, error) {
	var p server.Project
	err := db.pool.QueryRow(ctx, `SELECT id, name, created_at FROM projects WHERE name = $1`, name).
		Scan(&p.ID, &p.Name, &p.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("project %q: %w", name, ErrNotFound)
	}
	return p, err
}

func insertKey(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, k *server.Key) error {
	err := q.QueryRow(ctx,
		`INSERT INTO api_keys (project_id, kind, hash, prefix) VALUES ($1, $2, $3, $4) RETURNING id, created_at`,
		k.ProjectID, string(k.Kind), k.Hash[:], k.Prefix).Scan(&k.ID, &k.CreatedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return fmt.Errorf("project %d: %w", k.ProjectID, ErrNotFound)
	}
	return err
}

// CreateKey stores a key (made by [server.NewKey]) for k.ProjectID, and
// notes it in the project's audit log as done from the command line.
func (db *DB) CreateKey(ctx context.Context, k server.Key) (server.Key, error) {
	return db.CreateKeyAs(ctx, k, commandLine)
}

// CreateKeyAs implements [server.KeyManager].
func (db *DB) CreateKeyAs(ctx context.Context, k server.Key, actor string) (server.Key, error) {
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if err := insertKey(ctx, tx, &k); err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]string{"key": k.Prefix, "kind": string(k.Kind)})
		return db.audit(ctx, tx, k.ProjectID, actor, server.AuditKeyCreate, detail)
	})
	if err != nil {
		return server.Key{}, fmt.Errorf("postgres: create key: %w", err)
	}
	return k, nil
}

const keyColumns = `id, project_id, kind, hash, prefix, created_at, revoked_at`

func scanKey(row pgx.Row) (server.Key, error) {
	var k server.Key
	var kind string
	var hash []byte
	if err := row.Scan(&k.ID, &k.ProjectID, &kind, &hash, &k.Prefix, &k.CreatedAt, &k.RevokedAt); err != nil {
		return k, err
	}
	k.Kind = server.KeyKind(kind)
	copy(k.Hash[:], hash)
	return k, nil
}

// KeyByHash returns the key with this hash, revoked or not.
func (db *DB) KeyByHash(ctx context.Context, hash [32]byte) (server.Key, error) {
	k, err := scanKey(db.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE hash = $1`, hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return k, server.ErrKeyNotFound
	}
	return k, err
}

// Keys lists the keys of a project, or of all projects when projectID is 0.
func (db *DB) Keys(ctx context.Context, projectID int64) ([]server.Key, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE $1 = 0 OR project_id = $1 ORDER BY id`, projectID)
	if err != nil {
		return nil, fmt.Errorf("postgres: keys: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (server.Key, error) { return scanKey(row) })
}

// RevokeKey revokes a key; it stops working for the next request.
// Revoking a revoked key is a no-op. The revocation is noted in the
// project's audit log as done from the command line.
func (db *DB) RevokeKey(ctx context.Context, id int64) error {
	return db.revokeKey(ctx, 0, id, commandLine)
}

// RevokeKeyAs implements [server.KeyManager].
func (db *DB) RevokeKeyAs(ctx context.Context, project, id int64, actor string) error {
	err := db.revokeKey(ctx, project, id, actor)
	if errors.Is(err, ErrNotFound) {
		return server.ErrKeyNotFound
	}
	return err
}

// revokeKey revokes key id, of project unless project is 0.
func (db *DB) revokeKey(ctx context.Context, project, id int64, actor string) error {
	tag, err := db.pool.Exec(ctx, `
		WITH k AS (
		    UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 AND ($4 = 0 OR project_id = $4)
		    RETURNING project_id, prefix, kind
		)
		INSERT INTO audit_log (project_id, actor, action, detail)
		SELECT project_id, $2, $3, jsonb_build_object('key', prefix, 'kind', kind) FROM k`,
		id, actor, server.AuditKeyRevoke, project)
	if err != nil {
		return fmt.Errorf("postgres: revoke key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("key %d: %w", id, ErrNotFound)
	}
	return nil
}

// WriteKeys returns the unrevoked write keys, at most limit of them, the
// newest first.
func (db *DB) WriteKeys(ctx context.Context, limit int) ([]server.Key, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE kind = 'write' AND revoked_at IS NULL ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: write keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (server.Key, error) { return scanKey(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: write keys: %w", err)
	}
	return keys, nil
}

// keysChannel is the channel that a trigger on api_keys notifies of every
// change (migration 00005).
const keysChannel = "tk_keys"

// WatchKeys listens on its own connection (not one of the pool's) for
// changes of the keys: it calls ready once it listens, then changed after
// each committed change, until ctx ends or the connection fails, and
// returns why it stopped.
func (db *DB) WatchKeys(ctx context.Context, ready, changed func()) error {
	cfg := db.pool.Config().ConnConfig.Copy()
	// The connection waits outside any query, which a cancel request
	// would not end: the end of ctx ends the wait at once.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: watch keys: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+keysChannel); err != nil {
		return fmt.Errorf("postgres: watch keys: %w", err)
	}
	ready()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("postgres: watch keys: %w", err)
		}
		changed()
	}
}
