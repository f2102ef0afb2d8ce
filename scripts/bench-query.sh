#!/usr/bin/env bash
# make bench-query: the query API at 10 million events. It loads the
# synthetic history (server/synth) into a fresh database through a real
# tk-server's ingest (bench/cmd/tkload), then times every question the
# dashboard asks, against plain SQL over the events table
# (bench/cmd/querybench). TK_BENCH_EVENTS and TK_BENCH_RUNS change the
# size and the rounds. docs/benchmarks.md, "The query API", has results.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
base="${TK_TEST_DATABASE_URL:-$(./scripts/ensure-postgres.sh)}"
events=${TK_BENCH_EVENTS:-10000000}
runs=${TK_BENCH_RUNS:-3}
db=tk_querybench
url="${base%/*}/$db?${base#*\?}"
[ "$url" = "${base%/*}/$db?$base" ] && url="${base%/*}/$db"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

psql "$base" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
(cd cmd/tk-server && $GO build -o "$work/tk-server" .)
(cd bench && $GO build -o "$work/tkload" ./cmd/tkload && $GO build -o "$work/querybench" ./cmd/querybench)
export TK_DATABASE_URL="$url"
"$work/tk-server" migrate >/dev/null 2>&1
key=$("$work/tk-server" project create bench --json | sed -E 's/.*"write_key":"([^"]+)".*/\1/')
# The whole history arrives today: the caps' daily allowance of new values
# must take months of them, or the rollups fold most of it.
"$work/tk-server" serve --addr 127.0.0.1:0 --addr-file "$work/addr" --rate-limit -1 --caps-new-per-day 100000000 \
	--log-level error &
pid=$!
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
end=$(date -u +%F)
"$work/tkload" -url "http://$(cat "$work/addr")" -key "$key" -events "$events" -end "$end" -clients 4 -batch 1000 -progress 30s
kill "$pid"
# What the hourly maintenance does for the closed days: one rollup row per key.
"$work/tk-server" maintain
psql "$url" -qc "VACUUM ANALYZE" >/dev/null
"$work/querybench" -db "$url" -project bench -end "$(date -u -d yesterday +%F)" -runs "$runs"
