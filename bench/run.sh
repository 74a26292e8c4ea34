#!/usr/bin/env bash
# Load benchmark for hallpass, using wrk.
#
#   bench/run.sh                      # SQLite, 5 rounds of 10 s per scenario
#   BENCH_DB=postgres bench/run.sh    # the same on a throwaway PostgreSQL cluster
#   BENCH_SECONDS=5 BENCH_ROUNDS=3 bench/run.sh
#   HALLPASS_BIN=path/to/hallpass BARE_BIN=path/to/bare-axum bench/run.sh   # skip the builds
#
# One release binary, one server process, one fresh database (SQLite file, or PostgreSQL
# with BENCH_DB=postgres) with 100 apps configured ([[apps]] in a generated hallpass.toml).
# Beside it, a bare axum "hello" server (bench/bare_axum.rs, same axum, tokio and
# allocator) as the yardstick: every scenario's req/s is also shown as a share of the bare
# server's in the same round. Each round runs the scenarios one after another:
#
#   bare)   GET / on the bare axum server
#   a)      GET /healthz
#   b)      GET /api/auth/me with a valid session cookie
#   e)      GET /api/auth/me with an API key (Authorization: Bearer)
#   f)      GET /api/authz/forward-auth with a valid session cookie, asking about one of
#           the 100 apps (the path every request of every guarded app takes)
#   c)      GET /login (the sign-in page)
#
# After the rounds, once: d) POST /api/auth/login with a wrong password from 64
# connections (the "login storm"), while a second wrk measures /healthz latency from 4
# connections at the same time.
#
# The report gives, per scenario, the median over the rounds (req/s, share of bare, p50,
# p99) and every round's req/s. The server's resident memory (VmRSS) is read right after
# start-up and again after the whole run (after 2 s of quiet); its peak during each
# scenario is the kernel's high-water mark (VmHWM), reset as the scenario starts. Results are printed as a markdown table and, with
# the raw wrk output, saved under bench/out/<timestamp>/.
#
# Exit status: non-zero if the setup fails or if a scenario that should only get 2xx
# answers got anything else. The targets at the end (PASS/FAIL) are figures to look at,
# not tests: they do not change the exit status.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO_ROOT=$PWD

SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-5}
DB_KIND=${BENCH_DB:-sqlite}
[[ $DB_KIND == sqlite || $DB_KIND == postgres ]] || { echo "BENCH_DB is sqlite or postgres" >&2; exit 1; }
ADMIN_USER="admin"
ADMIN_PASS="bench-password-123"
ADMIN_EMAIL="admin@example.com"

log() { printf '>> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------
command -v curl >/dev/null || die "curl is required"
if ! command -v wrk >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "wrk not found, installing it with apt-get"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
    else
        die "wrk is required (Debian/Ubuntu: sudo apt-get install wrk)"
    fi
fi

# ---------------------------------------------------------------------------
# Build (once)
# ---------------------------------------------------------------------------
if [[ -n ${HALLPASS_BIN:-} ]]; then
    BIN=$HALLPASS_BIN
    log "using prebuilt binary $BIN"
else
    if [[ -z ${CARGO_TARGET_DIR:-} ]]; then
        export CARGO_TARGET_DIR=/work/target
        log "CARGO_TARGET_DIR not set, using $CARGO_TARGET_DIR"
    fi
    log "building release binary (cargo build --release)"
    cargo build --release
    BIN=$CARGO_TARGET_DIR/release/hallpass
fi
[[ -x $BIN ]] || die "binary not found or not executable: $BIN"
# How many of bench/link.order's names the binary has (bench/link-order.sh): a stale order
# no longer groups the start's code, and the memory after start-up shows it.
LINK_ORDER="not known (no symbol table, or no nm)"
if command -v nm >/dev/null && [[ -f bench/link.order ]] && [[ $(nm "$BIN" 2>/dev/null | grep -c " main$") -gt 0 ]]; then
    found=$(comm -12 <(grep -v '^#' bench/link.order | sort -u) \
        <(nm --defined-only "$BIN" | awk '{ print $3 }' | sort -u) | wc -l)
    LINK_ORDER="$found of the $(grep -vc '^#' bench/link.order) names of bench/link.order in the binary"
fi
log "link order: $LINK_ORDER"
if [[ -n ${BARE_BIN:-} ]]; then
    log "using prebuilt bare server $BARE_BIN"
else
    log "building the bare axum server (cargo build --release --example bare-axum)"
    cargo build --release --example bare-axum
    BARE_BIN=${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/examples/bare-axum
fi
[[ -x $BARE_BIN ]] || die "bare server not found or not executable: $BARE_BIN"

# ---------------------------------------------------------------------------
# Scratch space and cleanup
# ---------------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/hallpass-bench.XXXXXX")
SERVER_PID=
BARE_PID=

cleanup() {
    local rc=$?
    if [[ -n $BARE_PID ]]; then kill "$BARE_PID" 2>/dev/null || true; fi
    pg_stop
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $rc -ne 0 && -s $TMP/server.log ]]; then
        printf '\n--- last lines of the server log (%s) ---\n' "$TMP/server.log" >&2
        tail -n 30 "$TMP/server.log" >&2
        printf '(scratch directory kept: %s)\n' "$TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
source "$REPO_ROOT/bench/pg.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

OUT_DIR=${BENCH_OUT_DIR:-$REPO_ROOT/bench/out/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT_DIR"

# ---------------------------------------------------------------------------
# Start the server
# ---------------------------------------------------------------------------

# Pick a random port in 20000-49999 that nothing on 127.0.0.1 listens on.
# (Probe with bash's /dev/tcp: a refused connection means the port is free.)
free_port() {
    local port i
    for i in $(seq 1 50); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "could not find a free port (tried $i)"
}

PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
BARE_PORT=$(free_port)
[[ $BARE_PORT != "$PORT" ]] || BARE_PORT=$(free_port)
BARE=http://127.0.0.1:$BARE_PORT

# 100 apps, one host each; the benchmark asks about one in the middle.
APPS=100
{
    for i in $(seq -w 0 $((APPS - 1))); do
        printf '[[apps]]\nname = "App %s"\nhosts = ["app%s.bench.test"]\naccess = "signed_in"\n\n' "$i" "$i"
    done
} >"$TMP/hallpass.toml"
FA_HOST=app42.bench.test

if [[ $DB_KIND == postgres ]]; then
    log "starting a throwaway PostgreSQL cluster"
    pg_start "$TMP" || die "could not start PostgreSQL (see $TMP/pg/server.log)"
    DB_URL=$PG_URL
else
    DB_URL="sqlite://$TMP/hallpass.db"
fi

log "starting $BIN serve on $BASE ($DB_KIND database)"
# Run from the scratch dir so no stray config file or ./data in the repo is
# picked up. Quiet logging: per-request logs would be part of what we measure.
# Brute-force limits off: the storm (d) measures the password-hash pool under load,
# which the limits would otherwise answer with cheap 429s after 10 attempts
# (bench/bruteforce.sh measures the limits).
start_server() {
    (
        cd "$TMP"
        exec env \
            RUST_LOG="${RUST_LOG:-warn}" \
            HALLPASS_SERVER__BIND="127.0.0.1:$PORT" \
            HALLPASS_SERVER__PUBLIC_URL="$BASE" \
            HALLPASS_DATABASE__URL="$DB_URL" \
            HALLPASS_ADMIN_USERNAME="$ADMIN_USER" \
            HALLPASS_ADMIN_PASSWORD="$ADMIN_PASS" \
            HALLPASS_ADMIN_EMAIL="$ADMIN_EMAIL" \
            HALLPASS_AUTH__RATE_LIMIT__ENABLED=false \
            HALLPASS_CONFIG="$TMP/hallpass.toml" \
            "$BIN" serve
    ) >>"$TMP/server.log" 2>&1 &
    SERVER_PID=$!
    # Wait up to 30 s for /healthz.
    for _ in $(seq 1 300); do
        if curl -fs -o /dev/null "$BASE/healthz"; then break; fi
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited during startup"
        sleep 0.1
    done
    curl -fs -o /dev/null "$BASE/healthz" || die "server did not answer /healthz within 30 s"
}

# The first start creates the admin (one password hash); memory "after start-up" is
# measured on a second, ordinary start of the same instance.
start_server
kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
start_server
"$BARE_BIN" "127.0.0.1:$BARE_PORT" >"$TMP/bare.log" 2>&1 &
BARE_PID=$!
sleep 0.5
curl -fs -o /dev/null "$BARE/" || die "the bare axum server did not answer"
# Memory right after start-up, before any request but the readiness probes.
sleep 1
STARTUP_RSS=$(awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")

# ---------------------------------------------------------------------------
# Log in once to get a session cookie for scenario (b)
# ---------------------------------------------------------------------------
login_body=$(printf '{"username":"%s","password":"%s"}' "$ADMIN_USER" "$ADMIN_PASS")
status=$(curl -s -o "$TMP/login.body" -D "$TMP/login.headers" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data "$login_body" "$BASE/api/auth/login") || true
[[ $status == 200 ]] || die "login as $ADMIN_USER failed: HTTP ${status:-none}: $(head -c 300 "$TMP/login.body" 2>/dev/null)"

# Take the cookie from the Set-Cookie header rather than a cookie jar: curl will
# not send a Secure cookie over plain http, and wrk needs it as a header anyway.
SESSION=$(tr -d '\r' <"$TMP/login.headers" \
    | sed -n 's/^[Ss]et-[Cc]ookie:[[:space:]]*\(hallpass_session=[^;]*\).*/\1/p' | head -n 1)
[[ -n $SESSION ]] || die "login returned 200 but no hallpass_session cookie was set (headers in $TMP/login.headers)"
COOKIE_HEADER="Cookie: $SESSION"

status=$(curl -s -o /dev/null -w '%{http_code}' -H "$COOKIE_HEADER" "$BASE/api/auth/me") || true
[[ $status == 200 ]] || die "GET /api/auth/me with the session cookie returned HTTP ${status:-none}"

# An API key for scenario (e), made with the session (the CSRF token comes from /me).
csrf=$(curl -s -H "$COOKIE_HEADER" "$BASE/api/auth/me" | sed -n 's/.*"csrf_token":"\([^"]*\)".*/\1/p')
[[ -n $csrf ]] || die "/api/auth/me gave no csrf_token"
API_KEY=$(curl -s -H "$COOKIE_HEADER" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
    -H "Origin: $BASE" --data '{"name":"bench"}' "$BASE/api/me/api-keys" \
    | sed -n 's/.*"key":"\(hp_[^"]*\)".*/\1/p')
[[ -n $API_KEY ]] || die "could not create an API key"
BEARER_HEADER="Authorization: Bearer $API_KEY"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "$BEARER_HEADER" "$BASE/api/auth/me") || true
[[ $status == 200 ]] || die "GET /api/auth/me with the API key returned HTTP ${status:-none}"

FA_HEADERS=(-H "$COOKIE_HEADER" -H "Accept: text/html" -H "X-Forwarded-Method: GET"
    -H "X-Forwarded-Proto: https" -H "X-Forwarded-Host: $FA_HOST" -H "X-Forwarded-Uri: /dashboard")
status=$(curl -s -o "$TMP/fa.body" -D "$TMP/fa.headers" -w '%{http_code}' "${FA_HEADERS[@]}" \
    "$BASE/api/authz/forward-auth") || true
[[ $status == 200 ]] || die "forward-auth for $FA_HOST returned HTTP ${status:-none}: $(head -c 300 "$TMP/fa.body")"
grep -qi "^remote-user: $ADMIN_USER" "$TMP/fa.headers" || die "forward-auth answered 200 without Remote-User"

# wrk script for the login storm: a wrong password for the real admin account.
# It also counts response statuses, so the report shows whether the storm was
# answered with 401 (password checked) or something cheaper such as 429.
cat >"$TMP/storm.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"username":"$ADMIN_USER","password":"not-the-password"}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

statuses = {}
function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local total = {}
    for _, t in ipairs(threads) do
        for code, n in pairs(t:get("statuses")) do
            total[code] = (total[code] or 0) + n
        end
    end
    for code, n in pairs(total) do
        io.write(string.format("status %d: %d\n", code, n))
    end
end
EOF

# ---------------------------------------------------------------------------
# RSS sampling
# ---------------------------------------------------------------------------

# Peak resident memory during a scenario: the kernel's own high-water mark (VmHWM), reset
# at the scenario's start by writing 5 to /proc/PID/clear_refs (Linux 4.0 and later).
# Exact, where sampling every 100 ms could miss a short peak, and nothing runs beside wrk
# while it measures (a sampler forking `sleep` ten times a second took a share of the two
# cores and showed in the tail latencies it sat beside). Where clear_refs cannot be written,
# the figure is the peak since start-up, an upper bound, and the script says so once.
HWM_SINCE_START=
reset_peak_rss() {
    if ! { echo 5 >"/proc/$SERVER_PID/clear_refs"; } 2>/dev/null && [[ -z $HWM_SINCE_START ]]; then
        HWM_SINCE_START=1
        log "cannot write /proc/$SERVER_PID/clear_refs: peak memory figures are peaks since start-up"
    fi
}

# The peak since the last reset, in MB.
read_peak_rss() {
    awk '$1 == "VmHWM:" { printf "%.1f", $2 / 1024; found = 1 } END { if (!found) print "n/a" }' \
        "/proc/$SERVER_PID/status"
}

# ---------------------------------------------------------------------------
# wrk output parsing
# ---------------------------------------------------------------------------
wrk_rps() { awk '$1 == "Requests/sec:" { print $2 }' "$1"; }
wrk_pct() { awk -v p="$2" '$1 == p { print $2 }' "$1"; }
wrk_non2xx() { awk '/Non-2xx or 3xx responses:/ { n = $NF } END { print n + 0 }' "$1"; }
wrk_sockerr() { sed -n 's/^[[:space:]]*Socket errors:[[:space:]]*//p' "$1"; }
wrk_requests() { awk '$2 == "requests" && $3 == "in" { print $1 }' "$1"; }
# Requests that got no answer within wrk's 2 s timeout are not in the latency
# histogram at all, so they have to be looked at separately.
wrk_timeouts() { awk '/Socket errors:/ { n = $NF } END { print n + 0 }' "$1"; }

# wrk prints latencies as e.g. 512.00us, 1.23ms, 2.01s; convert to ms.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000
        else if (v ~ /ms$/) n += 0
        else if (v ~ /m$/) n *= 60000
        else if (v ~ /s$/) n *= 1000
        printf "%.3f", n
    }'
}

# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------
WRK=(wrk -t1 -c64 -d"${SECS}s" --latency)

# Run one wrk scenario: name, then wrk arguments. Output goes to $TMP/<name>.txt.
run_scenario() {
    local name=$1
    shift
    log "scenario $name (${SECS}s)"
    reset_peak_rss
    "${WRK[@]}" "$@" >"$TMP/$name.txt" 2>&1 || die "wrk failed for $name: $(cat "$TMP/$name.txt")"
    RSS[$name]=$(read_peak_rss)
}

declare -A RSS

# Memory after start-up and one sign-in, for reference: read once the sign-in's hashing
# thread has freed its buffer (src/service/passwords.rs).
sleep 1
IDLE_RSS=$(awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")

SCENARIOS=(bare healthz me bearer fa login_page)
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    run_scenario "bare.$round" "$BARE/"
    run_scenario "healthz.$round" "$BASE/healthz"
    run_scenario "me.$round" -H "$COOKIE_HEADER" "$BASE/api/auth/me"
    run_scenario "bearer.$round" -H "$BEARER_HEADER" "$BASE/api/auth/me"
    run_scenario "fa.$round" "${FA_HEADERS[@]}" "$BASE/api/authz/forward-auth"
    run_scenario "login_page.$round" "$BASE/login"
done

# (d) The storm and the /healthz probe run concurrently for the same duration.
log "scenario storm + healthz_under_storm (${SECS}s)"
reset_peak_rss
"${WRK[@]}" -s "$TMP/storm.lua" "$BASE/api/auth/login" >"$TMP/storm.txt" 2>&1 &
storm_pid=$!
wrk -t1 -c4 -d"${SECS}s" --latency "$BASE/healthz" >"$TMP/healthz_under_storm.txt" 2>&1 &
probe_pid=$!
wait "$storm_pid" || die "wrk failed for storm: $(cat "$TMP/storm.txt")"
wait "$probe_pid" || die "wrk failed for healthz_under_storm: $(cat "$TMP/healthz_under_storm.txt")"
RSS[storm]=$(read_peak_rss)

kill -0 "$SERVER_PID" 2>/dev/null || die "server died during the benchmark"
# Memory once the run is over and the server has been quiet for a moment.
sleep 2
FINAL_RSS=$(awk '$1 == "VmRSS:" { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
declare -A LABEL=(
    [bare]="bare axum hello (yardstick)"
    [healthz]="a) GET /healthz"
    [me]="b) GET /api/auth/me (session cookie)"
    [bearer]="e) GET /api/auth/me (API key)"
    [fa]="f) forward-auth (session, 100 apps)"
    [login_page]="c) GET /login (sign-in page)"
    [storm]="d) POST /api/auth/login, wrong password"
    [healthz_under_storm]="GET /healthz during (d), 4 conns"
)

failed=()
for s in "${SCENARIOS[@]}"; do
    for round in $(seq 1 "$ROUNDS"); do
        f="$TMP/$s.$round.txt"
        [[ -n $(wrk_rps "$f") ]] || die "could not parse wrk output for $s round $round: $(cat "$f")"
        if [[ $(wrk_non2xx "$f") -ne 0 || $(wrk_requests "$f") -eq 0 ]]; then failed+=("$s.$round"); fi
    done
done
for s in storm healthz_under_storm; do
    [[ -n $(wrk_rps "$TMP/$s.txt") ]] || die "could not parse wrk output for $s: $(cat "$TMP/$s.txt")"
done
if [[ $(wrk_non2xx "$TMP/healthz_under_storm.txt") -ne 0 ]]; then failed+=(healthz_under_storm); fi

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Per scenario and round: req/s, share of that round's bare req/s (%), p50 ms, p99 ms.
for s in "${SCENARIOS[@]}"; do
    for round in $(seq 1 "$ROUNDS"); do
        f="$TMP/$s.$round.txt"
        printf '%s %s %s %s %s\n' "$s" "$(wrk_rps "$f")" \
            "$(awk -v r="$(wrk_rps "$f")" -v b="$(wrk_rps "$TMP/bare.$round.txt")" 'BEGIN { printf "%.1f", 100 * r / b }')" \
            "$(to_ms "$(wrk_pct "$f" 50%)")" "$(to_ms "$(wrk_pct "$f" 99%)")"
    done
done >"$TMP/rounds.txt"
col() { awk -v s="$1" -v c="$2" '$1 == s { print $c }' "$TMP/rounds.txt"; }
med() { col "$1" "$2" | median; }
peak_rss() {
    local s=$1 round best=0
    for round in $(seq 1 "$ROUNDS"); do
        best=$(awk -v a="$best" -v b="${RSS[$s.$round]}" 'BEGIN { print (b + 0 > a + 0) ? b : a }')
    done
    echo "$best"
}

report() {
    local s
    echo "## hallpass benchmark ($DB_KIND)"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $ROUNDS rounds of ${SECS}s per scenario, wrk -t1 -c64" \
        "(probe: -c4), $(nproc) CPUs, binary $BIN; link order: $LINK_ORDER"
    echo
    echo "Medians over the rounds; \"% of bare\" is against the bare server of the same round."
    echo
    echo "| scenario | req/s | % of bare | p50 ms | p99 ms | worst p99 ms | peak RSS MB | req/s per round |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    for s in "${SCENARIOS[@]}"; do
        printf '| %s | %.0f | %.0f %% | %.2f | %.2f | %.2f | %s | %s |\n' "${LABEL[$s]}" \
            "$(med "$s" 2)" "$(med "$s" 3)" "$(med "$s" 4)" "$(med "$s" 5)" \
            "$(col "$s" 5 | sort -g | tail -n 1)" "$(peak_rss "$s")" \
            "$(col "$s" 2 | awk '{ printf "%s%.0f", (NR > 1 ? ", " : ""), $1 }')"
    done
    for s in storm healthz_under_storm; do
        printf '| %s | %s | | %s | %s | | %s | |\n' "${LABEL[$s]}" "$(wrk_rps "$TMP/$s.txt")" \
            "$(to_ms "$(wrk_pct "$TMP/$s.txt" 50%)")" "$(to_ms "$(wrk_pct "$TMP/$s.txt" 99%)")" \
            "${RSS[storm]}"
    done
    echo
    echo "Memory (VmRSS): ${STARTUP_RSS} MB after start-up, ${IDLE_RSS} MB after one sign-in," \
        "${FINAL_RSS} MB after the whole run, ${RSS[storm]} MB peak during the login storm."
    echo "Storm responses by status: $(grep '^status ' "$TMP/storm.txt" | sed 's/^status //' | paste -sd, - | sed 's/,/, /g' || true)"
    echo

    # Targets (issue 12): reported, not enforced.
    local floor=50 verdict
    [[ $DB_KIND == postgres ]] && floor=25
    echo "### targets"
    echo
    for s in me bearer fa; do
        if [[ $DB_KIND == sqlite ]]; then
            verdict=$(awk -v r="$(med "$s" 3)" -v p="$(med "$s" 5)" -v f=$floor 'BEGIN { print (r >= f && p <= 2) ? "PASS" : "FAIL" }')
            echo "- $verdict: ${LABEL[$s]} >= $floor % of bare and p99 <= 2 ms (median $(med "$s" 3) %, p99 $(med "$s" 5) ms)"
        else
            verdict=$(awk -v r="$(med "$s" 3)" -v f=$floor 'BEGIN { print (r >= f) ? "PASS" : "FAIL" }')
            echo "- $verdict: ${LABEL[$s]} >= $floor % of bare (median $(med "$s" 3) %, p99 $(med "$s" 5) ms)"
        fi
    done
    if [[ $DB_KIND == sqlite ]]; then
        # The 2 ms is a figure for a quiet machine: on a busy one the yardstick misses it too.
        echo "- the bare server's own p99 in this run: $(med bare 5) ms (p99 targets are met on a" \
            "quiet machine only: bench/README.md, fourteenth session)"
        verdict=$(awk -v r="$STARTUP_RSS" 'BEGIN { print (r + 0 <= 20) ? "PASS" : "FAIL" }')
        echo "- $verdict: RSS after start-up <= 20 MB (${STARTUP_RSS} MB)"
        verdict=$(awk -v r="$FINAL_RSS" 'BEGIN { print (r + 0 <= 40) ? "PASS" : "FAIL" }')
        echo "- $verdict: RSS after the whole run <= 40 MB (${FINAL_RSS} MB)"
    fi
    verdict=$(awk -v r="${RSS[storm]}" 'BEGIN { print (r != "n/a" && r + 0 < 100) ? "PASS" : "FAIL" }')
    echo "- $verdict: peak RSS during the login storm < 100 MB (${RSS[storm]} MB)"
    local p99_ms probe_requests probe_timeouts
    p99_ms=$(to_ms "$(wrk_pct "$TMP/healthz_under_storm.txt" 99%)")
    probe_requests=$(wrk_requests "$TMP/healthz_under_storm.txt")
    probe_timeouts=$(wrk_timeouts "$TMP/healthz_under_storm.txt")
    # A probe that was starved (no answers, or timeouts) fails regardless of p99.
    verdict=$(awk -v p="$p99_ms" -v n="$probe_requests" -v t="$probe_timeouts" \
        'BEGIN { print (p + 0 < 10 && n + 0 > 0 && t + 0 == 0) ? "PASS" : "FAIL" }')
    echo "- $verdict: /healthz p99 under storm < 10 ms (${p99_ms} ms;" \
        "${probe_requests} answered, ${probe_timeouts} timed out)"
}

report | tee "$OUT_DIR/summary.md"
cp "$TMP"/*.txt "$OUT_DIR/"
log "results saved in ${OUT_DIR#"$REPO_ROOT"/}"

if [[ ${#failed[@]} -gt 0 ]]; then
    echo >&2
    for s in "${failed[@]}"; do
        echo "FAILED RUN: $s: $(wrk_requests "$TMP/$s.txt") requests," \
            "$(wrk_non2xx "$TMP/$s.txt") non-2xx/3xx responses" >&2
    done
    exit 1
fi
