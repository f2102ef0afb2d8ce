package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/telemetry-kit/telemetry-kit/server"
)

var _ server.RejectionCounter = (*DB)(nil)

// maxReasonLen bounds a rejection reason as stored; the decoder's are
// shorter.
const maxReasonLen = 100

// CountRejections adds the rejected events of one request to today's
// counts of project.
func (db *DB) CountRejections(ctx context.Context, project int64, byReason map[string]int64) error {
	if len(byReason) == 0 {
		return nil
	}
	reasons := make([]string, 0, len(byReason))
	counts := make([]int64, 0, len(byReason))
	for r, n := range byReason {
		if len(r) > maxReasonLen || n <= 0 {
			continue
		}
		reasons, counts = append(reasons, r), append(counts, n)
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO daily_rejections AS r (project_id, day, reason, events)
SELECT $1, ($2::timestamptz AT TIME ZONE 'UTC')::date, reason, events
FROM unnest($3::text[], $4::bigint[]) AS t(reason, events)
ORDER BY reason
ON CONFLICT (project_id, day, reason) DO UPDATE SET events = tk_add(r.events, excluded.events)`,
		project, db.cfg.Now(), reasons, counts)
	return err
}

// Quality answers q for project from the data-loss, rejection and fold
// counters.
func (db *DB) Quality(ctx context.Context, project int64, q server.QualityQuery) ([]server.QualityDay, error) {
	byDay := map[time.Time]*server.QualityDay{}
	var out []server.QualityDay
	for d := q.From; !d.After(q.To); d = d.AddDate(0, 0, 1) {
		out = append(out, server.QualityDay{Day: d, Rejected: map[string]int64{}, Folded: map[string]int64{}})
	}
	for i := range out {
		byDay[out[i].Day] = &out[i]
	}
	err := db.readOnly(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
SELECT 'd', day, '', dropped FROM daily_data_loss WHERE project_id = $1 AND day BETWEEN $2 AND $3
UNION ALL
SELECT 'r', day, reason, events FROM daily_rejections WHERE project_id = $1 AND day BETWEEN $2 AND $3
UNION ALL
SELECT 'f', day, dimension, sum(events)::bigint FROM daily_folds WHERE project_id = $1 AND day BETWEEN $2 AND $3
GROUP BY 2, 3`, project, q.From, q.To)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var kind, name string
			var day time.Time
			var n int64
			if err := rows.Scan(&kind, &day, &name, &n); err != nil {
				return err
			}
			d := byDay[day.UTC()]
			if d == nil {
				continue
			}
			switch kind {
			case "d":
				d.Dropped += n
			case "r":
				d.Rejected[name] += n
			case "f":
				d.Folded[name] += n
			}
		}
		return rows.Err()
	})
	return out, err
}
