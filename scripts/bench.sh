#!/usr/bin/env bash
# make bench: the SDK's benchmarks and the comparisons against baselines.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
export TK_TEST_DATABASE_URL="${TK_TEST_DATABASE_URL:-$(./scripts/ensure-postgres.sh)}"
# Track benchmarks persist every event: a fixed count keeps the run short.
$GO test -run='^$' -bench=Track -benchtime=200000x -benchmem -count=1 ./core/
$GO test -run='^$' -bench=. -benchmem -count=1 ./store/ ./consent/ ./internal/upload/
(cd bench && $GO run ./cmd/compare)
