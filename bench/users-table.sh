#!/usr/bin/env bash
# How the admin user table and its search behave with 100,000 accounts (release build).
#
#   bench/users-table.sh                       # SQLite, 100k users, 5 s per request, 5 runs
#   BENCH_DB=postgres bench/users-table.sh     # the same on a throwaway PostgreSQL cluster
#   BENCH_USERS=20000 BENCH_SECONDS=3 BENCH_RUNS=3 BENCH_CONNECTIONS=64 bench/users-table.sh
#   HALLPASS_BIN=path/to/hallpass bench/users-table.sh
#   BENCH_ONLY='first page|pending' bench/users-table.sh   # only the rows whose label matches
#
# Fills a fresh database with BENCH_USERS accounts (python3 writes them, no password
# hashing; each with the folded search key Hallpass writes), signs in as the admin and
# measures each kind of table request with wrk (-t1 -cBENCH_CONNECTIONS, default 64): the
# first page, filtered pages, the htmx fragment, searches of 3+ characters (rare, common,
# none), of 1–2 characters, each sort and keyset pages. Every request is measured
# BENCH_RUNS times; the table shows each run's p99 and the medians, then the latency on one
# connection alone (the server's own time, no queueing). Each row repeats one address, so
# after its first request the server answers from the pages it keeps while nothing changes
# (service::users::KeptPages); the last row asks for a different page every time (a wrk
# script picks a random cursor), which no kept page can answer. Figures, not
# tests. PostgreSQL: a throwaway cluster from bench/pg.sh, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${BENCH_USERS:-100000}
SECS=${BENCH_SECONDS:-5}
RUNS=${BENCH_RUNS:-5}
CONNS=${BENCH_CONNECTIONS:-64}
DB=${BENCH_DB:-sqlite}
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
chmod 755 "$WORK"   # the csv is read by psql; the cluster runs as postgres when we are root
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
SERVER_PID=
source bench/pg.sh
cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null
    pg_stop
    wait 2>/dev/null; rm -rf "$WORK"
}
trap cleanup EXIT

case $DB in
sqlite) DB_URL="sqlite://$WORK/hallpass.db" ;;
postgres)
    pg_start "$WORK" || { echo "could not start PostgreSQL (see $WORK/pg/server.log)" >&2; exit 1; }
    DB_URL=$PG_URL
    PSQL="$(pg_bin_dir)/psql -q -h 127.0.0.1 -p $PG_PORT -U postgres -d hallpass"
    ;;
*) echo "BENCH_DB must be sqlite or postgres" >&2; exit 1 ;;
esac

start() {
    HALLPASS_SERVER__BIND="127.0.0.1:$PORT" HALLPASS_DATABASE__URL="$DB_URL" \
    HALLPASS_ADMIN_USERNAME=admin HALLPASS_ADMIN_PASSWORD=$PASS RUST_LOG=warn \
        "$BIN" serve 2>>"$WORK/server.log" &
    SERVER_PID=$!
    for _ in $(seq 200); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1
}

start   # migrations + admin
echo ">> inserting $USERS users ($DB)" >&2
# CSV of the accounts: 60 % users, 30 % viewers, 10 % admins; 10 % pending, 10 % disabled.
# search_key folds like domain::user_list::search_key (lower case, ς → σ, ß → ss).
python3 - "$USERS" >"$WORK/users.csv" <<'PY'
import csv, random, sys
n = int(sys.argv[1]); random.seed(12)
fold = lambda s: s.lower().replace("ς", "σ").replace("ß", "ss")
roles = ["user"] * 6 + ["viewer"] * 3 + ["admin"]
statuses = ["active"] * 8 + ["pending", "disabled"]
w = csv.writer(sys.stdout)
for i in range(n):
    r = random.choice(roles); s = "active" if r == "admin" else random.choice(statuses)
    last = "" if i % 4 == 0 else 1_700_000_000 + random.randint(0, 30_000_000)
    name, email, display = f"user{i:06d}", f"user{i}@example.com", f"User {i}"
    key = "\n".join(fold(x) for x in (name, email, display))
    w.writerow([name, name, email, email, display, r, s, 1, 1_600_000_000 + i, 0, last, key])
PY
COLS="username, username_key, email, email_key, display_name, role, status, session_version, created_at, updated_at, last_login_at, search_key"
if [[ $DB == sqlite ]]; then
    python3 - "$WORK/hallpass.db" "$WORK/users.csv" "$COLS" <<'PY'
import csv, sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30)
rows = [[None if v == "" else v for v in r] for r in csv.reader(open(sys.argv[2], newline=""))]
c.executemany(f"INSERT INTO users ({sys.argv[3]}) VALUES ({','.join('?' * 12)})", rows)
c.commit(); c.execute("ANALYZE users"); c.commit()
PY
else
    $PSQL -c "\\copy users ($COLS) FROM '$WORK/users.csv' WITH (FORMAT csv)" -c "VACUUM ANALYZE users"
fi

COOKIE=$(curl -si -H 'Content-Type: application/json' -d "{\"username\":\"admin\",\"password\":\"$PASS\"}" "$BASE/api/auth/login" \
    | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: hallpass_session=\([^;]*\).*/\1/p')
[[ -n $COOKIE ]] || { echo "login failed" >&2; exit 1; }
CURSOR=$(curl -s -H "Cookie: hallpass_session=$COOKIE" "$BASE/api/admin/users?sort=created&dir=desc" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])')
# A cursor deep in the table: jump by asking for a created_at far down.
DEEP="$((1600000000 + USERS / 2)):$((USERS / 2))"
HX=(-H "HX-Request: true" -H "HX-Target: user-table")

printf '\n## user table with %s users (%s, wrk -t1 -c%s -d%ss, %s runs)\n\n' "$USERS" "$DB" "$CONNS" "$SECS" "$RUNS"
printf '| request | rows | req/s (median) | p50 (median) | p99 (median) | p99 of each run | alone (-c1) p50 / p99 |\n|---|---:|---:|---:|---:|---|---:|\n'
# Median of the numbers on stdin (wrk's latencies come with units: converted to ms).
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.2f\n", v}'; }
measure() {
    local label=$1 path=$2; shift 2
    [[ -z ${BENCH_ONLY:-} || $label =~ $BENCH_ONLY ]] || return 0
    local rows out rps=() p50=() p99=()
    rows=$(curl -s "$@" -H "Cookie: hallpass_session=$COOKIE" "$BASE$path" | { grep -o '<tr id="user-' || true; } | wc -l)
    local script=()
    [[ -n ${WRK_SCRIPT:-} ]] && script=(-s "$WRK_SCRIPT")
    for _ in $(seq "$RUNS"); do
        out=$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "${script[@]}" "$@" -H "Cookie: hallpass_session=$COOKIE" "$BASE$path")
        if grep -q 'Non-2xx' <<<"$out"; then echo "non-2xx answers for $path" >&2; exit 1; fi
        rps+=("$(awk '/Requests\/sec/ {print $2}' <<<"$out")")
        p50+=("$(awk '$1=="50%" {print $2}' <<<"$out" | ms)")
        p99+=("$(awk '$1=="99%" {print $2}' <<<"$out" | ms)")
    done
    # One connection: the time the server takes for the request itself, without queueing.
    out=$(wrk -t1 -c1 -d2s --latency "${script[@]}" "$@" -H "Cookie: hallpass_session=$COOKIE" "$BASE$path")
    printf '| %s | %s | %s | %s ms | %s ms | %s | %s / %s ms |\n' "$label" "$rows" \
        "$(printf '%s\n' "${rps[@]}" | median)" "$(printf '%s\n' "${p50[@]}" | median)" \
        "$(printf '%s\n' "${p99[@]}" | median)" "$(IFS=/; echo "${p99[*]}")" \
        "$(awk '$1=="50%" {print $2}' <<<"$out" | ms)" "$(awk '$1=="99%" {print $2}' <<<"$out" | ms)"
}
measure "first page (username)" "/admin/users"
measure "filtered: status=pending" "/admin/users?status=pending"
measure "filtered: role=viewer&status=pending" "/admin/users?role=viewer&status=pending"
measure "htmx fragment (first page)" "/admin/users" "${HX[@]}"
# What a browser asks for: the same page gzip-compressed (level 4, per response).
measure "first page, gzip (as browsers ask)" "/admin/users" -H "Accept-Encoding: gzip"
measure "search 3+ rare: q=user0999 (100 rows)" "/admin/users?q=user0999"
measure "search 3+ common: q=example.com (all)" "/admin/users?q=example.com"
measure "search 3+ no match: q=zzzz" "/admin/users?q=zzzz"
measure "search 3+ Unicode no match: q=ÄRGER" "/admin/users?q=%C3%84RGER"
measure "search 3+ fragment: q=User 4242" "/admin/users?q=User+4242" "${HX[@]}"
measure "search 1-2: q=u9 (no username)" "/admin/users?q=u9"
measure "search 1-2: q=us (every username)" "/admin/users?q=us"
measure "sort=created desc" "/admin/users?sort=created&dir=desc"
measure "sort=last_login desc" "/admin/users?sort=last_login&dir=desc"
measure "next page via cursor" "/admin/users?sort=created&dir=desc&after=$CURSOR"
measure "deep page (middle of table)" "/admin/users?sort=created&dir=desc&after=$DEEP"
# A page no kept page can answer: each request continues after a random account.
cat >"$WORK/random-page.lua" <<LUA
request = function()
    local i = math.random(2, $USERS)
    return wrk.format(nil, "/admin/users?sort=created&dir=desc&after=" .. (1600000000 + i) .. ":" .. i)
end
LUA
WRK_SCRIPT="$WORK/random-page.lua" measure "a different deep page each time (never kept)" \
    "/admin/users?sort=created&dir=desc&after=$DEEP"
