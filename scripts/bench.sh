#!/usr/bin/env bash
# make bench: every benchmark, each compared with its baseline in the same
# run; docs/benchmarks.md records the results.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
export TK_TEST_DATABASE_URL="${TK_TEST_DATABASE_URL:-$(./scripts/ensure-postgres.sh)}"
bench() { echo; echo "### $*"; "$@" 2>&1 | grep -Ev '^(goos|goarch|pkg|cpu|PASS)'; }

# SDK: Track persists every event, so a fixed count keeps the run short.
bench $GO test -run='^$' -bench=Track -benchtime=200000x -benchmem -count=1 ./core/
bench $GO test -run='^$' -bench=. -benchmem -count=1 ./internal/store/ ./internal/privacy/ ./adapters/cobra/
# Library mode vs posthog-go; CLI mode vs the same command without telemetry.
(cd bench && echo && $GO run ./cmd/compare)
# Sync: host wall time with the endpoint healthy, refused and blackholed; sender throughput.
bench $GO test -run='^$' -bench=InvocationWallTime -benchtime=41x -count=1 ./internal/sender/
bench $GO test -run='^$' -bench=SenderThroughput -benchtime=1x -count=1 ./internal/sender/
# Adapters: instrumented example vs the same tree without telemetry.
bench $GO test -run='^$' -bench=CLIOverhead -benchtime=1x -count=1 ./examples/
# Server: HTTP ingest vs COPY of the same rows, peak RSS.
bench $GO test -run='^$' -bench=. -benchmem -count=1 ./server/decode/ ./server/httpapi/ ./server/postgres/
bench $GO test -run='^$' -bench=IngestVsCopy -benchtime=1x -count=1 ./cmd/tk-server/
