#!/usr/bin/env bash
# make test: formatting, vet and every test of both modules, against a real
# PostgreSQL (the one at TK_TEST_DATABASE_URL, the local one, or a throwaway
# cluster started by scripts/ensure-postgres.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi

url=$(./scripts/ensure-postgres.sh)
export TK_TEST_DATABASE_URL="$url"

$GO vet ./...
(cd bench && $GO vet ./... && $GO build ./...)
$GO test -count=1 -timeout 20m ./...
