#!/usr/bin/env bash
# ensure-postgres.sh prints the URL of a PostgreSQL server that tests can use.
#
# 1. If $TK_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test?sslmode=disable)
#    answers, it prints that.
# 2. Otherwise it starts a throwaway cluster with the local initdb/pg_ctl in ./.pgtest
#    (or $TK_PGTEST_DIR) on a free port (as root, the tools run as the postgres user),
#    and prints its URL. A cluster it started before is reused when it still runs.
# 3. Otherwise it exits 1 with one line saying how to provide a server.
#
# tk-server needs the server's hll and tdigest extensions (its rollups'
# users and durations): when the server lacks them and runs from this
# machine's Debian packages, it installs postgresql-<major>-hll and
# postgresql-<major>-tdigest with apt-get, else it exits 1 saying so.
#
# Stop a throwaway cluster with: pg_ctl -D .pgtest/data stop  (as its owner)
set -euo pipefail

default_url="postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
url="${TK_TEST_DATABASE_URL:-$default_url}"
dir="${TK_PGTEST_DIR:-$PWD/.pgtest}"

log() { echo "ensure-postgres: $*" >&2; }

# answers URL: can we connect and run a query?
answers() {
	if command -v psql >/dev/null 2>&1; then
		PGCONNECT_TIMEOUT=3 psql "$1" -XAtqc 'SELECT 1' >/dev/null 2>&1
		return
	fi
	local hostport="${1#*@}"
	hostport="${hostport%%/*}"
	local host="${hostport%:*}" port="${hostport##*:}"
	command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$host" -p "$port" -t 3
}

# ready URL: print URL and exit, once the server offers the extensions
# tk-server needs.
ready() {
	if command -v psql >/dev/null 2>&1; then
		local missing major
		missing() {
			psql "$1" -XAtqc "SELECT string_agg(x, ' ') FROM unnest(ARRAY['hll', 'tdigest']) x
				WHERE x NOT IN (SELECT name FROM pg_available_extensions)" 2>/dev/null
		}
		missing=$(missing "$1")
		if [ -n "$missing" ]; then
			major=$(psql "$1" -XAtqc "SELECT current_setting('server_version_num')::int / 10000")
			local pkgs=()
			for x in $missing; do pkgs+=("postgresql-$major-$x"); done
			if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -d "/usr/lib/postgresql/$major" ]; then
				log "installing ${pkgs[*]} (extensions tk-server needs)"
				export DEBIAN_FRONTEND=noninteractive
				apt-get install -y -q "${pkgs[@]}" >&2 ||
					{ apt-get update -q >&2 && apt-get install -y -q "${pkgs[@]}" >&2; } || true
				missing=$(missing "$1")
			fi
			if [ -n "$missing" ]; then
				echo "ensure-postgres: the PostgreSQL server at $1 lacks the extensions tk-server needs ($missing): install ${pkgs[*]} on it" >&2
				exit 1
			fi
		fi
	fi
	echo "$1"
	exit 0
}

# The default URL names database "test": create it when the server answers
# without it.
if answers "$url"; then
	ready "$url"
fi
admin_url="$(echo "$url" | sed -E 's#(//[^/]*)/[^?]*#\1/postgres#')"
if command -v psql >/dev/null 2>&1 && answers "$admin_url"; then
	dbname="$(echo "$url" | sed -E 's#^[^/]*//[^/]*/([^?]*).*#\1#')"
	psql "$admin_url" -XAtqc "CREATE DATABASE \"$dbname\"" >/dev/null 2>&1 || true
	if answers "$url"; then
		ready "$url"
	fi
fi

# A cluster we started before?
if [ -f "$dir/url" ] && answers "$(cat "$dir/url")"; then
	ready "$(cat "$dir/url")"
fi

bin=""
if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
	bin="$(dirname "$(command -v initdb)")"
else
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then bin="$d"; break; fi
	done
fi
if [ -z "$bin" ]; then
	echo "ensure-postgres: no PostgreSQL at $url and no initdb to start one: set TK_TEST_DATABASE_URL to a reachable server or install PostgreSQL (e.g. apt-get install postgresql)" >&2
	exit 1
fi

as_owner=()
if [ "$(id -u)" = 0 ]; then
	if ! id postgres >/dev/null 2>&1; then
		echo "ensure-postgres: running as root and no postgres user to run initdb as: set TK_TEST_DATABASE_URL to a reachable server" >&2
		exit 1
	fi
	as_owner=(runuser -u postgres --)
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 54329)"
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
if [ ! -f "$dir/data/PG_VERSION" ]; then
	rm -rf "$dir/data"
	log "initdb in $dir/data"
	"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
		echo "ensure-postgres: initdb failed (see $dir/initdb.log): set TK_TEST_DATABASE_URL to a reachable server" >&2
		exit 1
	}
fi
log "starting a throwaway cluster on 127.0.0.1:$port"
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
	-o "-p $port -c listen_addresses=127.0.0.1 -k $dir" start >/dev/null 2>&1 || {
	echo "ensure-postgres: pg_ctl start failed (see $dir/log): set TK_TEST_DATABASE_URL to a reachable server" >&2
	exit 1
}
new_url="postgres://postgres@127.0.0.1:$port/test?sslmode=disable"
"${as_owner[@]}" "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -XAtqc 'CREATE DATABASE test' postgres >/dev/null 2>&1 ||
	psql "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable" -XAtqc 'CREATE DATABASE test' >/dev/null 2>&1 || true
if ! answers "$new_url"; then
	echo "ensure-postgres: the throwaway cluster does not answer (see $dir/log): set TK_TEST_DATABASE_URL to a reachable server" >&2
	exit 1
fi
echo "$new_url" >"$dir/url"
ready "$new_url"
