package postgres

import (
	"context"
	"math/rand/v2"
	"testing"
)

// The sketches built in Go are, once the rollup statement has passed them
// through hll_union, byte for byte what the hll extension's hll_add_agg
// makes of the same user ids, on either side of the explicit threshold;
// and the hashes are the extension's hll_hash_bytea.
func TestSketchMatchesExtension(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 17, explicitThreshold - 1, explicitThreshold, explicitThreshold + 1, 500, 4000} {
		us := make(users, n)
		ids := make([][]byte, n)
		for i := range us {
			for j := range us[i] {
				us[i][j] = byte(r.Uint32())
			}
			ids[i] = us[i][:]
		}
		var w arrayWriter
		w.sketch(us)
		sketch := w.buf[4:]
		var fromGo, fromSQL string
		var cardGo, cardSQL float64
		if err := db.pool.QueryRow(ctx, `
			SELECT tk_sketch($1::bytea)::text, hll_cardinality(tk_sketch($1::bytea)),
			       coalesce(hll_add_agg(hll_hash_bytea(u)), hll_empty())::text,
			       coalesce(hll_cardinality(hll_add_agg(hll_hash_bytea(u))), 0)
			FROM unnest($2::bytea[]) AS u`, sketch, ids).Scan(&fromGo, &cardGo, &fromSQL, &cardSQL); err != nil {
			t.Fatalf("%d users: %v", n, err)
		}
		if fromGo != fromSQL || cardGo != cardSQL {
			t.Fatalf("%d users: sketch %s (%.1f users), hll_add_agg %s (%.1f)", n, fromGo[:min(len(fromGo), 24)], cardGo,
				fromSQL[:min(len(fromSQL), 24)], cardSQL)
		}
		if n > 0 {
			var h int64
			if err := db.pool.QueryRow(ctx, `SELECT hll_hash_bytea($1)`, ids[0]).Scan(&h); err != nil {
				t.Fatal(err)
			}
			if h != userHash(us[0]) {
				t.Fatalf("hash %d, hll_hash_bytea %d", userHash(us[0]), h)
			}
		}
	}
}
