#!/usr/bin/env bash
# Instructions per request of the hot path, counted under valgrind's callgrind: the one figure
# that does not move with the load of a shared machine (wall-clock req/s here varies by
# ±20 % from run to run, and this VM has no hardware instruction counters for `perf`).
#
#   bench/instructions.sh path/to/hallpass [N]     # N requests, default 1000
#   TARGET=fa bench/instructions.sh path/to/hallpass   # forward-auth instead (healthz, bearer too)
#   TARGET=users bench/instructions.sh path/to/hallpass 100   # the user table (users_hx: its htmx
#                                                             # fragment), USERS accounts (100000)
#
# One server on a fresh SQLite database, one admin, `GET /api/auth/me` (TARGET=me, the
# default), `GET /api/authz/forward-auth` asking about an app open to any signed-in
# account (TARGET=fa) or `GET /healthz` (TARGET=healthz) with its session cookie: N requests over one keep-alive connection (one curl, N URLs) after a warm-up of N,
# with the counters zeroed in between. Compare two binaries by running it on each.
# Needs valgrind (Debian: apt-get install valgrind) and curl.
set -uo pipefail
BIN=${1:?usage: bench/instructions.sh path/to/hallpass [N]}; N=${2:-1000}
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 1; }
TMP=$(mktemp -d /tmp/irq2.XXXXXX)
PORT=$((20000 + RANDOM % 30000)); BASE=http://127.0.0.1:$PORT
TARGET=${TARGET:-me}
case $TARGET in
    me) URL_PATH=/api/auth/me; EXTRA=() ;;
    healthz) URL_PATH=/healthz; EXTRA=() ;;
    bearer) URL_PATH=/api/auth/me; EXTRA=() ;;
    fa) URL_PATH=/api/authz/forward-auth
        EXTRA=(-H 'Accept: text/html' -H 'X-Forwarded-Method: GET' -H 'X-Forwarded-Proto: https'
            -H 'X-Forwarded-Host: app42.bench.test' -H 'X-Forwarded-Uri: /dashboard') ;;
    users) URL_PATH=/admin/users; EXTRA=() ;;
    users_hx) URL_PATH=/admin/users; EXTRA=(-H 'HX-Request: true' -H 'HX-Target: user-table') ;;
    users_pending) URL_PATH='/admin/users?status=pending'; EXTRA=() ;;
    *) echo "TARGET is me, bearer, fa, healthz, users, users_hx or users_pending" >&2; exit 1 ;;
esac
for i in $(seq -w 0 99); do
    printf '[[apps]]\nname = "App %s"\nhosts = ["app%s.bench.test"]\naccess = "signed_in"\n\n' "$i" "$i"
done > "$TMP/hallpass.toml"
( cd "$TMP"; exec env RUST_LOG=warn HALLPASS_SERVER__BIND=127.0.0.1:$PORT HALLPASS_SERVER__PUBLIC_URL=$BASE \
  HALLPASS_DATABASE__URL=sqlite://$TMP/h.db HALLPASS_ADMIN_USERNAME=admin HALLPASS_ADMIN_PASSWORD=bench-password-123 \
  HALLPASS_ADMIN_EMAIL=admin@example.com HALLPASS_AUTH__RATE_LIMIT__ENABLED=false \
  HALLPASS_CONFIG=$TMP/hallpass.toml \
  valgrind --tool=callgrind --callgrind-out-file=$TMP/cg.%p "$BIN" serve ) >"$TMP/log" 2>&1 &
PID=$!
for _ in $(seq 1 600); do curl -fs -o /dev/null $BASE/healthz && break; sleep 0.2; done
if [[ $TARGET == users* ]]; then
    # The accounts of bench/users-table.sh (same mix), straight into the database.
    python3 - "$TMP/h.db" "${USERS:-100000}" <<'PY'
import random, sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=30); n = int(sys.argv[2]); random.seed(12)
roles = ["user"] * 6 + ["viewer"] * 3 + ["admin"]; statuses = ["active"] * 8 + ["pending", "disabled"]
def row(i):
    r = random.choice(roles); s = "active" if r == "admin" else random.choice(statuses)
    name, email, display = f"user{i:06d}", f"user{i}@example.com", f"User {i}"
    last = None if i % 4 == 0 else 1_700_000_000 + random.randint(0, 30_000_000)
    return (name, name, email, email, display, r, s, 1, 1_600_000_000 + i, 0, last, "\n".join(x.lower() for x in (name, email, display)))
c.executemany("INSERT INTO users (username, username_key, email, email_key, display_name, role, status, session_version, created_at, updated_at, last_login_at, search_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", (row(i) for i in range(n)))
c.commit()
PY
fi
curl -s -D $TMP/h -o /dev/null -H 'Content-Type: application/json' --data '{"username":"admin","password":"bench-password-123"}' $BASE/api/auth/login
C=$(tr -d '\r' <$TMP/h | sed -n 's/^[Ss]et-[Cc]ookie:[[:space:]]*\(hallpass_session=[^;]*\).*/\1/p' | head -1)
AUTH=(-H "Cookie: $C")
if [[ $TARGET == bearer ]]; then
    T=$(curl -s -H "Cookie: $C" $BASE/api/auth/me | sed -n 's/.*"csrf_token":"\([^"]*\)".*/\1/p')
    K=$(curl -s -H "Cookie: $C" -H "X-CSRF-Token: $T" -H "Origin: $BASE" -H 'Content-Type: application/json' \
        --data '{"name":"bench"}' $BASE/api/me/api-keys | sed -n 's/.*"key":"\(hp_[^"]*\)".*/\1/p')
    AUTH=(-H "Authorization: Bearer $K")
fi
for i in $(seq $N); do printf 'url = "%s%s"\noutput = "/dev/null"\n' $BASE $URL_PATH; done > $TMP/cfg
curl -s "${AUTH[@]}" "${EXTRA[@]}" -K $TMP/cfg
callgrind_control -z $PID >/dev/null 2>&1
curl -s "${AUTH[@]}" "${EXTRA[@]}" -w '%{http_code}\n' -K $TMP/cfg | sort | uniq -c > $TMP/codes
callgrind_control -d $PID >/dev/null 2>&1; sleep 2
ir=$(cat $TMP/cg.*.1 2>/dev/null | awk '/^summary:/ {s+=$2} END{print s}')
echo "$(basename $BIN) $TARGET: codes $(tr '\n' ' ' < $TMP/codes) $ir instructions, $(awk -v a=$ir -v n=$N 'BEGIN{printf "%.0f", a/n}') instructions/request"
kill $PID; wait $PID 2>/dev/null; if [[ -n ${KEEP:-} ]]; then cp $TMP/cg.*.1 "$KEEP"; fi; rm -rf $TMP
