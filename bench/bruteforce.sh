#!/usr/bin/env bash
# Brute-force benchmark: what a burst of wrong passwords costs Hallpass with the default
# limits (auth.rate_limit: 10 failures per account + IP, 100 per IP, per 15 minutes).
#
#   bench/bruteforce.sh                        # build a release binary, run both variants
#   HALLPASS_BIN=path/to/hallpass bench/bruteforce.sh
#   ATTEMPTS=1000 CONCURRENCY=64 bench/bruteforce.sh
#   COMPARE=1 bench/bruteforce.sh              # also run (a) with the limits switched off
#
# Variants, each on a fresh server and a fresh SQLite database, all from 127.0.0.1:
#   a) ATTEMPTS wrong passwords for the one real account (admin), CONCURRENCY at a time;
#   b) ATTEMPTS wrong passwords spread over ATTEMPTS usernames (one attempt each).
#
# How hashes are counted: the server counts every argon2 computation it makes (each
# verification, real or against the dummy hash used for unknown accounts, each new hash
# and re-hash) and prints the total at shutdown ("Hallpass stopped password_hashes=N").
# The script stops the server with SIGTERM after the burst and reads that line. The number
# includes the admin's password hashed at start-up (HALLPASS_ADMIN_*); a run with no
# requests at all measures that baseline, and it is subtracted.
#
# Not a test: nothing here changes the exit status except a setup failure.
set -euo pipefail

cd "$(dirname "$0")/.."

ATTEMPTS=${ATTEMPTS:-1000}
CONCURRENCY=${CONCURRENCY:-64}
ADMIN_USER="admin"
ADMIN_PASS=bench-password-123

log() { printf '>> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v curl >/dev/null || die "curl is required"

if [[ -n ${HALLPASS_BIN:-} ]]; then
    BIN=$HALLPASS_BIN
else
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
    log "building release binary (cargo build --release)"
    cargo build --release
    BIN=$CARGO_TARGET_DIR/release/hallpass
fi
[[ -x $BIN ]] || die "binary not found or not executable: $BIN"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hallpass-bruteforce.XXXXXX")
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 30000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port"
}

# start_server NAME [ENV=VALUE…]: a fresh server in $TMP/NAME; sets BASE and SERVER_PID.
start_server() {
    local name=$1
    shift
    local dir=$TMP/$name port
    mkdir -p "$dir"
    port=$(free_port)
    BASE=http://127.0.0.1:$port
    (
        cd "$dir"
        # Warnings only, plus the shutdown line that carries the hash count.
        exec env RUST_LOG=warn,hallpass::server=info \
            HALLPASS_SERVER__BIND="127.0.0.1:$port" \
            HALLPASS_SERVER__DATA_DIR="$dir/data" \
            HALLPASS_DATABASE__URL="sqlite://$dir/hallpass.db" \
            HALLPASS_ADMIN_USERNAME="$ADMIN_USER" \
            HALLPASS_ADMIN_PASSWORD="$ADMIN_PASS" \
            "$@" "$BIN" serve
    ) >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        curl -fs -o /dev/null "$BASE/healthz" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || die "server $name exited: $(tail -5 "$dir/server.log")"
        sleep 0.1
    done
    die "server $name did not start"
}

# stop_server NAME: SIGTERM, wait for the exit, and set HASHES to the password_hashes count
# it logged. (Not to be called in $(…): a subshell cannot wait for the server.)
stop_server() {
    local name=$1
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=
    HASHES=$(sed -n 's/.*Hallpass stopped.*password_hashes=\([0-9]*\).*/\1/p' "$TMP/$name/server.log" | tail -n 1)
    [[ -n $HASHES ]] || die "server $name did not log its hash count at shutdown"
}

# burst NAME USERNAME_PATTERN: ATTEMPTS JSON sign-ins with a wrong password, CONCURRENCY at
# a time (curl --parallel); USERNAME_PATTERN is a printf format given the attempt number.
burst() {
    local name=$1 pattern=$2 i
    local config=$TMP/$name/curl.cfg
    : >"$config"
    for i in $(seq 1 "$ATTEMPTS"); do
        # One transfer per block; `next` separates them (none after the last).
        [[ $i -gt 1 ]] && echo next >>"$config"
        # shellcheck disable=SC2059
        printf 'url = "%s/api/auth/login"\nheader = "Content-Type: application/json"\ndata = "{\\"username\\":\\"%s\\",\\"password\\":\\"wrong-%d\\"}"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
            "$BASE" "$(printf "$pattern" "$i")" "$i" >>"$config"
    done
    local start end
    start=$(date +%s.%N)
    # A failed transfer shows up as code 000 under "other"; it does not stop the script.
    curl --silent --no-progress-meter --parallel --parallel-immediate \
        --parallel-max "$CONCURRENCY" -K "$config" >"$TMP/$name/codes.txt" || true
    end=$(date +%s.%N)
    ELAPSED=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
}

declare -a ROWS
# run NAME LABEL USERNAME_PATTERN [ENV=VALUE…]
run() {
    local name=$1 label=$2 pattern=$3
    shift 3
    log "$label"
    start_server "$name" "$@"
    burst "$name" "$pattern"
    local n401 n429 other total
    stop_server "$name"
    total=$(wc -l <"$TMP/$name/codes.txt")
    n401=$(grep -c '^401$' "$TMP/$name/codes.txt" || true)
    n429=$(grep -c '^429$' "$TMP/$name/codes.txt" || true)
    other=$((total - n401 - n429))
    # Audit rows the refusals cost (coalesced: see service/rate_limit.rs), if sqlite3 is here.
    local audited="n/a"
    if command -v sqlite3 >/dev/null; then
        audited=$(sqlite3 "$TMP/$name/hallpass.db" \
            "SELECT count(*) FROM audit_events WHERE action LIKE 'rate_limit.%'")
    fi
    ROWS+=("| $label | $total | $n401 | $n429 | $other | $((HASHES - BASELINE)) | $audited | ${ELAPSED} s |")
}

log "baseline: start and stop a server without requests"
start_server baseline
stop_server baseline
BASELINE=$HASHES

run one_account "a) $ATTEMPTS wrong passwords, one account (admin), one IP" "$ADMIN_USER"
run many_accounts "b) $ATTEMPTS wrong passwords over $ATTEMPTS usernames, one IP" "user%04d"
if [[ -n ${COMPARE:-} ]]; then
    run no_limits "a) with auth.rate_limit.enabled = false" "$ADMIN_USER" \
        HALLPASS_AUTH__RATE_LIMIT__ENABLED=false
fi

echo
echo "Brute-force burst: $ATTEMPTS attempts, $CONCURRENCY concurrent, default limits" \
    "(10 per account + IP, 100 per IP, 15 min); $(nproc) cores; binary $BIN"
echo "(hashes: argon2 computations counted by the server, minus the $BASELINE made at start-up)"
echo
echo "| Variant | attempts | 401 | 429 | other | hashes computed | rate_limit.* audit events | elapsed |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
