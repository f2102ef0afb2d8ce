#!/usr/bin/env bash
# make test: formatting, vet and every test of every module of the workspace
# (go.work: the SDK, server, cmd/tk-server, e2e, examples, bench; bench's
# timed comparisons run with make bench), against a real
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

# The dashboard's browser tests drive Debian's Chromium (headless): the one
# at $TK_CHROMIUM, else chromium or chromium-browser on PATH. Install it
# when it is missing and this user may; the tests then require it.
chromium=${TK_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$chromium" ] && command -v apt-get >/dev/null; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || { sudo -n true 2>/dev/null && sudo="sudo -n"; }
	if [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; then
		echo "installing chromium for the dashboard's browser tests (apt-get install -y chromium)"
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null 2>&1 ||
			{ DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >/dev/null 2>&1 &&
				DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null 2>&1; } || true
		chromium=$(command -v chromium || command -v chromium-browser || true)
	fi
fi
if [ -n "$chromium" ]; then
	export TK_REQUIRE_BROWSER=1
else
	echo "no chromium: the dashboard's browser tests are skipped (install it: apt-get install -y chromium)"
fi

# The SDK (the root module) is vetted and tested on its own, as a host
# builds it: GOWORK=off, at the lowest versions its go.mod requires, with
# go vet's stdversion check against its go line. Its adoption test
# (internal/adoption) adds it to a host pinned to older releases.
GOWORK=off $GO vet ./...
GOWORK=off $GO test -count=1 -timeout 20m ./...

# The other modules, in the workspace (go.work). bench's tests check its
# harness (installed copies, run order, paired ratios, the load tool);
# its timed comparisons run with make bench.
modules="server cmd/tk-server e2e examples bench"
for m in $modules; do
	(cd "$m" && $GO vet ./...)
done
for m in $modules; do
	(cd "$m" && $GO test -count=1 -timeout 20m ./...)
done
