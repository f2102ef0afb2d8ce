#!/usr/bin/env bash
# make bench: the SDK's benchmarks and the comparisons against baselines.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
export TK_TEST_DATABASE_URL="${TK_TEST_DATABASE_URL:-$(./scripts/ensure-postgres.sh)}"
$GO test -run='^$' -bench=. -benchmem -count=1 ./core/ ./store/ ./consent/
(cd bench && $GO run ./cmd/compare)
