#!/usr/bin/env bash
# How the admin user table behaves with 100,000 accounts (SQLite, release build).
#
#   bench/users-table.sh                 # 100k users, 5 s per query
#   BENCH_USERS=20000 BENCH_SECONDS=3 bench/users-table.sh
#   HALLPASS_BIN=path/to/hallpass bench/users-table.sh
#
# Fills a fresh database with BENCH_USERS accounts (python3's sqlite3 module, no hashing),
# signs in as the admin and measures each kind of table request with wrk (-t1 -c4):
# the first page, a search, a role+status filter, each sort, and a deep page via the
# keyset cursor. Prints a markdown table of req/s and latency. Figures, not tests.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${BENCH_USERS:-100000}
SECS=${BENCH_SECONDS:-5}
PASS="bench-password-123"
command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }

if [[ -n ${HALLPASS_BIN:-} ]]; then
    BIN=$HALLPASS_BIN
else
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
    cargo build --release --locked >&2
    BIN=$CARGO_TARGET_DIR/release/hallpass
fi

WORK=$(mktemp -d /tmp/hallpass-users-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
SERVER_PID=
cleanup() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

start() {
    HALLPASS_SERVER__BIND="127.0.0.1:$PORT" HALLPASS_DATABASE__URL="sqlite://$WORK/hallpass.db" \
    HALLPASS_ADMIN_USERNAME=admin HALLPASS_ADMIN_PASSWORD=$PASS RUST_LOG=warn \
        "$BIN" serve 2>>"$WORK/server.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1
}

start   # migrations + admin
echo ">> inserting $USERS users" >&2
python3 - "$WORK/hallpass.db" "$USERS" <<'PY'
import sqlite3, sys, random
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db, timeout=30)
roles = ["user"] * 6 + ["viewer"] * 3 + ["admin"]
statuses = ["active"] * 8 + ["pending", "disabled"]
rows = []
for i in range(n):
    r = random.choice(roles); s = "active" if r == "admin" else random.choice(statuses)
    last = None if i % 4 == 0 else 1_700_000_000 + random.randint(0, 30_000_000)
    rows.append((f"user{i:06d}", f"user{i:06d}", f"user{i}@example.com", f"user{i}@example.com",
                 f"User {i}", r, s, 1_600_000_000 + i, 0, last))
c.executemany("INSERT INTO users (username, username_key, email, email_key, display_name, role, status, "
              "session_version, created_at, updated_at, last_login_at) VALUES (?,?,?,?,?,?,?,1,?,?,?)", rows)
c.commit(); c.execute("ANALYZE"); c.commit()
PY

COOKIE=$(curl -si -H 'Content-Type: application/json' -d "{\"username\":\"admin\",\"password\":\"$PASS\"}" "$BASE/api/auth/login" \
    | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: hallpass_session=\([^;]*\).*/\1/p')
[[ -n $COOKIE ]] || { echo "login failed" >&2; exit 1; }
CURSOR=$(curl -s -H "Cookie: hallpass_session=$COOKIE" "$BASE/api/admin/users?sort=created&dir=desc" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])')
# A cursor deep in the table: jump by asking for a created_at far down.
DEEP="$((1600000000 + USERS / 2)):$((USERS / 2))"

printf '\n## user table with %s users (SQLite, wrk -t1 -c4 -d%ss)\n\n| request | req/s | p50 | p99 | rows |\n|---|---:|---:|---:|---:|\n' "$USERS" "$SECS"
measure() {
    local label=$1 path=$2 out rows
    rows=$(curl -s -H "Cookie: hallpass_session=$COOKIE" "$BASE$path" | { grep -o '<tr id="user-' || true; } | wc -l)
    out=$(wrk -t1 -c4 -d"${SECS}s" --latency -H "Cookie: hallpass_session=$COOKIE" "$BASE$path")
    if grep -q 'Non-2xx' <<<"$out"; then echo "non-2xx answers for $path" >&2; exit 1; fi
    printf '| %s | %s | %s | %s | %s |\n' "$label" \
        "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
        "$(awk '$1=="50%" {print $2}' <<<"$out")" \
        "$(awk '$1=="99%" {print $2}' <<<"$out")" "$rows"
}
measure "first page (username)" "/admin/users"
measure "search q=user0999" "/admin/users?q=user0999"
measure "search q=nomatch (full scan)" "/admin/users?q=zzzz"
measure "role=viewer&status=pending" "/admin/users?role=viewer&status=pending"
measure "sort=created desc" "/admin/users?sort=created&dir=desc"
measure "sort=last_login desc" "/admin/users?sort=last_login&dir=desc"
measure "next page via cursor" "/admin/users?sort=created&dir=desc&after=$CURSOR"
measure "deep page (middle of table)" "/admin/users?sort=created&dir=desc&after=$DEEP"
