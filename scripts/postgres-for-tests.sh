#!/usr/bin/env bash
# Make a throw-away PostgreSQL server available on 127.0.0.1 for the opus test suite.
#
#   eval "$(bash scripts/postgres-for-tests.sh)"
#
# Prints `export` lines on stdout (everything else goes to stderr):
#   OPUS_TEST_POSTGRES_URL  postgresql://postgres@127.0.0.1:PORT/opus_test
#   OPUS_TEST_PG_CTL        the pg_ctl binary that controls the server
#   OPUS_TEST_PGDATA        its data directory (the restart test uses both)
#
# Idempotent: when OPUS_TEST_POSTGRES_URL is already set and reachable it does nothing; when
# a server started by an earlier call still runs in $OPUS_TEST_PGDATA it is reused. Installs
# Debian's `postgresql` package only when no server binaries are found. The cluster trusts
# local connections and runs with fsync=off: it is for tests only.
set -euo pipefail

PGDATA="${OPUS_TEST_PGDATA:-${TMPDIR:-/tmp}/opus-test-pg}"
DB=opus_test

log() { echo "postgres-for-tests: $*" >&2; }

reachable() {
    command -v psql >/dev/null 2>&1 &&
        psql "$1" -v ON_ERROR_STOP=1 -qAtc 'select 1' >/dev/null 2>&1
}

if [ -n "${OPUS_TEST_POSTGRES_URL:-}" ] && reachable "$OPUS_TEST_POSTGRES_URL"; then
    log "OPUS_TEST_POSTGRES_URL is set and reachable; nothing to do"
    exit 0
fi

find_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
            echo "$d"
            return 0
        fi
    done
    d="$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")"
    d="$(cd "$d" 2>/dev/null && pwd -P || true)"
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
        echo "$d"
        return 0
    fi
    return 1
}

BINDIR="$(find_bindir || true)"
if [ -z "$BINDIR" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "no PostgreSQL server binaries found and not root: install the 'postgresql' package"
        exit 1
    fi
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    BINDIR="$(find_bindir)"
fi
PG_CTL="$BINDIR/pg_ctl"

# Server programs refuse to run as root: run them as the `postgres` user when we are root.
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    as_pg() { runuser -u postgres -- "$@"; }
    OWNER=postgres
else
    as_pg() { "$@"; }
    OWNER="$(id -un)"
fi

free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    log "creating a cluster in $PGDATA"
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA"
    chown "$OWNER" "$PGDATA"
    chmod 700 "$PGDATA"
    as_pg "$BINDIR/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-sync >"$PGDATA.initdb.log" 2>&1 ||
        { cat "$PGDATA.initdb.log" >&2; exit 1; }
    cat >>"$PGDATA/postgresql.conf" <<EOF

# opus test cluster
listen_addresses = '127.0.0.1'
port = $(free_port)
unix_socket_directories = '$PGDATA'
fsync = off
full_page_writes = off
max_connections = 100
EOF
fi

PORT="$(sed -n "s/^port = \([0-9]*\).*/\1/p" "$PGDATA/postgresql.conf" | tail -n 1)"
if ! as_pg "$PG_CTL" -D "$PGDATA" status >/dev/null 2>&1; then
    if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$PORT))!=0)"; then
        log "port $PORT is taken by something else; picking a new one"
        PORT="$(free_port)"
        echo "port = $PORT" >>"$PGDATA/postgresql.conf"
    fi
    log "starting the server on 127.0.0.1:$PORT"
    as_pg "$PG_CTL" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start >&2 ||
        { tail -n 30 "$PGDATA/server.log" >&2; exit 1; }
fi

ADMIN_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
if [ "$("$BINDIR/psql" "$ADMIN_URL" -qAtc "select 1 from pg_database where datname = '$DB'")" != 1 ]; then
    "$BINDIR/psql" "$ADMIN_URL" -qc "create database $DB" >&2
fi

URL="postgresql://postgres@127.0.0.1:$PORT/$DB"
log "ready: $URL"
echo "export OPUS_TEST_POSTGRES_URL='$URL'"
echo "export OPUS_TEST_PG_CTL='$PG_CTL'"
echo "export OPUS_TEST_PGDATA='$PGDATA'"
