package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
)

// CreateSession stores a dashboard session signed in with one read key.
func (db *DB) CreateSession(ctx context.Context, tokenHash [32]byte, keyID int64, expires time.Time) error {
	_, err := db.pool.Exec(ctx, `
		WITH s AS (
		    INSERT INTO dashboard_sessions (token_hash, expires_at) VALUES ($1, $3) RETURNING token_hash
		)
		INSERT INTO dashboard_session_keys (token_hash, project_id, key_id)
		SELECT s.token_hash, k.project_id, k.id FROM s, api_keys k WHERE k.id = $2`,
		tokenHash[:], keyID, expires)
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	return nil
}

// Session returns the unexpired session with this token hash and the
// projects of its keys that are still unrevoked read keys.
func (db *DB) Session(ctx context.Context, tokenHash [32]byte) (server.Session, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT s.expires_at, p.id, p.name, k.id, k.prefix, k.kind, p.retention_days
		FROM dashboard_sessions s
		LEFT JOIN dashboard_session_keys sk ON sk.token_hash = s.token_hash
		LEFT JOIN api_keys k ON k.id = sk.key_id AND k.kind IN ('read', 'admin') AND k.revoked_at IS NULL
		LEFT JOIN projects p ON p.id = k.project_id
		WHERE s.token_hash = $1 AND s.expires_at > now()
		ORDER BY p.name, p.id`, tokenHash[:])
	if err != nil {
		return server.Session{}, fmt.Errorf("postgres: session: %w", err)
	}
	var s server.Session
	found := false
	for rows.Next() {
		var id, keyID *int64
		var name, prefix, kind *string
		var days *int32
		if err := rows.Scan(&s.ExpiresAt, &id, &name, &keyID, &prefix, &kind, &days); err != nil {
			rows.Close()
			return server.Session{}, fmt.Errorf("postgres: session: %w", err)
		}
		found = true
		if id != nil {
			s.Projects = append(s.Projects, server.SessionProject{ID: *id, Name: *name, KeyID: *keyID, KeyPrefix: *prefix,
				KeyKind: server.KeyKind(*kind), Retention: db.retentionOf(days)})
		}
	}
	if err := rows.Err(); err != nil {
		return server.Session{}, fmt.Errorf("postgres: session: %w", err)
	}
	if !found {
		return server.Session{}, server.ErrSessionNotFound
	}
	return s, nil
}

// AddSessionKey adds a read key to a session: its project's key if the
// session had one before is replaced. A session holds at most
// server.MaxSessionKeys keys.
func (db *DB) AddSessionKey(ctx context.Context, tokenHash [32]byte, keyID int64) error {
	return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT 1 FROM dashboard_sessions WHERE token_hash = $1 AND expires_at > now() FOR UPDATE`,
			tokenHash[:]).Scan(new(int))
		if errors.Is(err, pgx.ErrNoRows) {
			return server.ErrSessionNotFound
		}
		if err != nil {
			return fmt.Errorf("postgres: add session key: %w", err)
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO dashboard_session_keys (token_hash, project_id, key_id)
			SELECT $1, project_id, id FROM api_keys WHERE id = $2
			ON CONFLICT (token_hash, project_id) DO UPDATE SET key_id = excluded.key_id, added_at = now()`,
			tokenHash[:], keyID)
		if err != nil {
			return fmt.Errorf("postgres: add session key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return server.ErrKeyNotFound
		}
		var total int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM dashboard_session_keys WHERE token_hash = $1`,
			tokenHash[:]).Scan(&total); err != nil {
			return fmt.Errorf("postgres: add session key: %w", err)
		}
		if total > server.MaxSessionKeys {
			return fmt.Errorf("postgres: a session holds at most %d projects", server.MaxSessionKeys)
		}
		return nil
	})
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, tokenHash [32]byte) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM dashboard_sessions WHERE token_hash = $1`, tokenHash[:]); err != nil {
		return fmt.Errorf("postgres: delete session: %w", err)
	}
	return nil
}

// pruneSessions deletes the sessions that expired.
func (db *DB) pruneSessions(ctx context.Context) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM dashboard_sessions WHERE expires_at <= now()`)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
