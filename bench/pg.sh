# Sourced by the bench scripts: a throwaway PostgreSQL cluster for BENCH_DB=postgres.
#
#   source bench/pg.sh
#   pg_start "$TMP"          # sets PG_URL (a fresh database "hallpass") and PG_DIR
#   ...
#   pg_stop                  # also safe to call when nothing was started
#
# Uses the server binaries under /usr/lib/postgresql/<version>/bin (initdb refuses root, so
# as root the cluster runs as the `postgres` OS user). Durability is off (fsync,
# synchronous_commit): this measures Hallpass, not the disk.

PG_DIR=
PG_URL=
PG_PORT=

pg_bin_dir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -x $d/initdb ]] || { echo "error: no PostgreSQL server binaries under /usr/lib/postgresql" >&2; return 1; }
    echo "$d"
}

pg_as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- sh -c "$1"; else sh -c "$1"; fi
}

pg_start() {
    local parent=$1 bin i
    bin=$(pg_bin_dir) || return 1
    PG_DIR=$parent/pg
    mkdir -p "$PG_DIR"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$PG_DIR"; chmod 755 "$parent"; fi
    PG_PORT=$((20000 + RANDOM % 30000))
    pg_as_owner "$bin/initdb -D $PG_DIR/data -U postgres -A trust -E UTF8 --no-sync --no-instructions >/dev/null" || return 1
    pg_as_owner "$bin/pg_ctl -D $PG_DIR/data -w -l $PG_DIR/server.log start -o '-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200' >/dev/null" || return 1
    for i in $(seq 1 100); do
        pg_as_owner "$bin/psql -h 127.0.0.1 -p $PG_PORT -U postgres -d postgres -qAtc 'CREATE DATABASE hallpass' >/dev/null 2>&1" && break
        sleep 0.1
    done
    PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/hallpass"
}

pg_stop() {
    [[ -n $PG_DIR && -d $PG_DIR/data ]] || return 0
    pg_as_owner "$(pg_bin_dir)/pg_ctl -D $PG_DIR/data -m immediate stop >/dev/null 2>&1" || true
    rm -rf "$PG_DIR"
    PG_DIR=
}
