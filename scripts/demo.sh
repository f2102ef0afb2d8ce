#!/usr/bin/env bash
# make demo: the whole path on embedded defaults. A PostgreSQL (the one in
# TK_DATABASE_URL, else the local one, else a throwaway cluster), tk-server
# with a fresh project, the example CLIs run as a user would against it, and
# a printout of what arrived.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
work="$PWD/.tk-demo"
rm -rf "$work" && mkdir -p "$work/bin"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building tk-server and the example tools"
$GO build -o "$work/bin/" ./cmd/tk-server ./examples/cobra-cli ./examples/urfave-cli ./bench/cmd/tkload

db_url=${TK_DATABASE_URL:-}
if [ -z "$db_url" ]; then
	base=$(./scripts/ensure-postgres.sh)
	command -v psql >/dev/null || { echo "demo: psql is needed to create the demo database (or set TK_DATABASE_URL)" >&2; exit 1; }
	psql "$base" -XAtqc 'DROP DATABASE IF EXISTS tk_demo WITH (FORCE)' -c 'CREATE DATABASE tk_demo' >/dev/null
	db_url=$(echo "$base" | sed -E 's#(//[^/]*)/[^?]*#\1/tk_demo#')
fi
export TK_DATABASE_URL="$db_url"
echo "database: $db_url"

# A project of this run's own, so that the demo also runs again against the
# same TK_DATABASE_URL, and shows only what this run sent.
project="demo-$(date -u +%Y%m%d-%H%M%S)"
say "tk-server migrate; tk-server project create $project"
"$work/bin/tk-server" migrate 2>"$work/migrate.log" && echo "schema migrated (log: .tk-demo/migrate.log)"
keys=$("$work/bin/tk-server" project create "$project" --json)
write_key=$(echo "$keys" | sed -E 's/.*"write_key": *"([^"]+)".*/\1/')
read_key=$(echo "$keys" | sed -E 's/.*"read_key": *"([^"]+)".*/\1/')
project_id=$(echo "$keys" | sed -E 's/.*"project_id": *([0-9]+).*/\1/')
echo "$keys" | sed -E 's/("(write|read)_key": *"[^"]{12})[^"]*"/\1…"/g'

"$work/bin/tk-server" serve --addr 127.0.0.1:0 --addr-file "$work/addr" 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
[ -s "$work/addr" ] || { echo "demo: tk-server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
endpoint="http://$(cat "$work/addr")"
echo "tk-server listening on $endpoint"

# Each tool runs as a user would: its own HOME, the endpoint and write key
# from TK_ENDPOINT and TK_API_KEY, not in CI. The tools are opt-out: on a
# terminal the first command shows their notice. Without a terminal nobody
# sees it, and nothing would leave the machine, so the demo's user says yes
# with the tool's variable instead.
consent=()
if [ ! -t 2 ]; then
	echo "(stderr is not a terminal: the demo's user turns telemetry on with COBRA_CLI_TELEMETRY=1 and URFAVE_CLI_TELEMETRY=1)"
	consent=(COBRA_CLI_TELEMETRY=1 URFAVE_CLI_TELEMETRY=1)
fi
run_tool() {
	local tool=$1; shift
	local home="$work/home-$tool"
	mkdir -p "$home"
	printf '\033[2m$ %s %s\033[0m\n' "$tool" "$*"
	env -u CI -u DO_NOT_TRACK HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_CACHE_HOME="$home/.cache" \
		TK_ENDPOINT="$endpoint" TK_API_KEY="$write_key" "${consent[@]}" "$work/bin/$tool" "$@"
}

for tool in cobra-cli urfave-cli; do
	say "$tool: a user's session"
	run_tool $tool build --watch
	run_tool $tool build --production --out dist web api
	run_tool $tool serve --port 9000
	run_tool $tool config set region eu-west-1
	run_tool $tool config get region
	run_tool $tool deploy --target fail || true
	run_tool $tool deploy --target staging
	run_tool $tool version
	run_tool $tool telemetry status
	run_tool $tool telemetry flush
done

say "what arrived in PostgreSQL"
q() { psql "$db_url" -X -P pager=off -c "$1"; }
if command -v psql >/dev/null; then
	q "SELECT service_name AS tool, metadata->>'command' AS command, count(*) AS runs,
	          count(*) FILTER (WHERE (metadata->>'success')::bool) AS ok,
	          string_agg(DISTINCT NULLIF(metadata->>'error_kind', ''), ',') AS errors,
	          round(avg((metadata->>'duration_ms')::numeric), 1) AS avg_ms
	     FROM events WHERE project_id = $project_id GROUP BY 1, 2 ORDER BY 1, 2"
	# The flag rollup, as a dashboard reads it: does anyone use --watch?
	q "SELECT service_name AS tool, command, flag, coalesce(value, '') AS value, sum(events) AS runs
	     FROM daily_flag_counts
	    WHERE project_id = $project_id GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
else
	echo "(install psql to see the rows; the server log is in $work/server.log)"
fi

say "the same through the query API (docs/api.md), as CSV"
if command -v curl >/dev/null; then
	ask() {
		echo "\$ POST /api/v2/query $1"
		curl -sS "$endpoint/api/v2/query?format=csv" -H "Authorization: Bearer $read_key" -d "$1"
		echo
	}
	ask '{"metrics": ["events", "users", "success_rate", "duration_p50"], "dimensions": ["service", "command"], "date_range": "day"}'
	ask '{"metrics": ["events"], "dimensions": ["command", "flag", "flag_value"], "date_range": "day", "filters": [["is", "service", ["cobra-cli"]]]}'
else
	echo "(install curl to ask the query API)"
fi

say "the dashboard, with a generated history"
# 90 days of a tool's use by 2,000 users (server/synth), sent through the
# same ingest as the examples' events, so that every page has something to
# show; then the hourly maintenance, run once now.
"$work/bin/tkload" -url "$endpoint" -key "$write_key" -events 200000 -users 2000 -days 90 -service demo-cli \
	2>"$work/tkload.log" && tail -n 1 "$work/tkload.log"
"$work/bin/tk-server" maintain >"$work/maintain.log" 2>&1 && echo "maintenance done (log: .tk-demo/maintain.log)"
echo
echo "  dashboard: $endpoint/"
echo "  read key:  $read_key"
echo
if [ -t 0 ] && [ -t 1 ]; then
	echo "Sign in with the read key. tk-server keeps serving until Ctrl-C."
	wait $server
elif ! command -v curl >/dev/null; then
	echo "(install curl to check the dashboard's pages here)"
else
	# Not a terminal (as in CI): sign in as a browser would and check that
	# every page answers.
	jar="$work/cookies"
	csrf=$(curl -sS -c "$jar" "$endpoint/signin" | sed -nE 's/.*name="csrf" value="([^"]+)".*/\1/p' | head -n 1)
	home=$(curl -sS -b "$jar" -c "$jar" -o /dev/null -w '%{redirect_url}' -H "Origin: $endpoint" \
		--data-urlencode "csrf=$csrf" --data-urlencode "key=$read_key" "$endpoint/signin")
	case "$home" in */p/*) ;; *) echo "demo: signing in to the dashboard failed" >&2; exit 1 ;; esac
	for page in "" commands flags features versions platforms errors retention quality; do
		code=$(curl -sS -b "$jar" -o "$work/page.html" -w '%{http_code} %{time_total}' "$home$page")
		if [ "${code%% *}" != 200 ] || grep -q 'class="problem" role="alert">This panel' "$work/page.html"; then
			echo "demo: the dashboard page /$page failed ($code)" >&2
			exit 1
		fi
		printf '  %-10s %s s\n' "${page:-overview}" "${code#* }"
	done
	echo "every dashboard page answered"
fi
