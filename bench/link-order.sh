#!/usr/bin/env bash
# Writes bench/link.order: the functions of the release binary that a start and the hot
# requests run, for the linker to lay out next to each other (build.rs hands the file to
# lld as `--symbol-ordering-file`).
#
#   bench/link-order.sh                        # builds target/release/hallpass first
#   bench/link-order.sh path/to/hallpass       # a release binary built from this tree
#
# Why: the kernel maps a binary's code in 64 KiB windows around each page a process
# touches. Without an order, the few thousand functions a start runs lie scattered over
# the ~21 MB of code, and a start kept ~12 MB of it resident: the largest part of the
# idle memory (issue 12 point 5, bench/README.md). Laid out together they fit in a few
# MB, and the request path's functions share fewer pages and TLB entries.
#
# How: the server runs under valgrind's callgrind with the 100 apps of bench/run.sh, started
# twice: on a fresh SQLite database (it makes the admin), then again on that database, as
# every restart is. Each start is dumped after the first 200 on /healthz and a few seconds
# of quiet; the second, then, once more after the requests bench/run.sh measures (a
# sign-in, /api/auth/me with the cookie and with an API key, forward-auth checks with either
# and nginx's auth-request checks, /healthz, the sign-in page). The same again on a
# throwaway PostgreSQL cluster (bench/pg.sh) where its server binaries are installed. The
# file lists the request phases' functions first, the most instructions first, then the
# starts' other functions.
#
# The names are the linker's symbols, and a symbol's hash changes with the compiler, the
# Cargo.lock and the release profile: run this again after any of those change. A stale
# file does no harm (lld skips names it does not find, see build.rs), it only stops
# helping; bench/run.sh says how many of the names the binary it measures has. New code on
# the start or the hot path is left where the linker puts it until the file is written
# again: run this before a release.
# Needs valgrind (Debian: apt-get install valgrind), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/link.order
BIN=${1:-}
if [[ -z $BIN ]]; then
    cargo build --release --bin hallpass
    BIN="${CARGO_TARGET_DIR:-target}/release/hallpass"
fi
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 1; }
if [[ $(nm "$BIN" 2>/dev/null | grep -c ' main$') -eq 0 ]]; then
    echo "$BIN has no symbol table: build it with the release profile of Cargo.toml (strip = \"none\")" >&2
    exit 1
fi
BIN=$(realpath "$BIN")
TMP=$(mktemp -d /tmp/link-order.XXXXXX)
PORT=$((20000 + RANDOM % 30000)); BASE=http://127.0.0.1:$PORT
PID=

for i in $(seq -w 0 99); do
    printf '[[apps]]\nname = "App %s"\nhosts = ["app%s.bench.test"]\naccess = "signed_in"\n\n' "$i" "$i"
done > "$TMP/hallpass.toml"
source bench/pg.sh
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; pg_stop; rm -rf "$TMP"; }
trap cleanup EXIT

start() { # start TAG DB_URL: the server under callgrind, dumps in $TMP/TAG.PID.N
    ( cd "$TMP"; exec env RUST_LOG=warn HALLPASS_SERVER__BIND=127.0.0.1:$PORT HALLPASS_SERVER__PUBLIC_URL=$BASE \
      HALLPASS_DATABASE__URL="$2" HALLPASS_ADMIN_USERNAME=admin \
      HALLPASS_ADMIN_PASSWORD=bench-password-123 HALLPASS_ADMIN_EMAIL=admin@example.com \
      HALLPASS_AUTH__RATE_LIMIT__ENABLED=false HALLPASS_CONFIG=$TMP/hallpass.toml \
      valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
          --callgrind-out-file="$TMP/$1.%p" "$BIN" serve ) >"$TMP/$1.log" 2>&1 &
    PID=$!
    local up=
    for _ in $(seq 1 600); do curl -fs -o /dev/null "$BASE/healthz" && { up=1; break; }; sleep 0.2; done
    [[ -n $up ]] || { cat "$TMP/$1.log" >&2; echo "the server did not start" >&2; exit 1; }
    # The timers a fresh server runs in its first seconds belong to the start too.
    sleep 4
    callgrind_control -d "$PID" >/dev/null 2>&1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
many() { # many N PATH curl-args...: N requests over one connection
    local n=$1 path=$2; shift 2
    for _ in $(seq "$n"); do printf 'url = "%s%s"\noutput = "/dev/null"\n' "$BASE" "$path"; done > "$TMP/cfg"
    curl -s "$@" -K "$TMP/cfg"
}
requests() { # the requests bench/run.sh measures, then a dump
    local c t k
    curl -s -D "$TMP/h" -o /dev/null -H 'Content-Type: application/json' \
        --data '{"username":"admin","password":"bench-password-123"}' "$BASE/api/auth/login"
    c=$(tr -d '\r' <"$TMP/h" | sed -n 's/^[Ss]et-[Cc]ookie:[[:space:]]*\(hallpass_session=[^;]*\).*/\1/p' | head -1)
    [[ -n $c ]] || { echo "the sign-in gave no session cookie" >&2; exit 1; }
    t=$(curl -s -H "Cookie: $c" "$BASE/api/auth/me" | sed -n 's/.*"csrf_token":"\([^"]*\)".*/\1/p')
    k=$(curl -s -H "Cookie: $c" -H "X-CSRF-Token: $t" -H "Origin: $BASE" -H 'Content-Type: application/json' \
        --data '{"name":"bench"}' "$BASE/api/me/api-keys" | sed -n 's/.*"key":"\(hp_[^"]*\)".*/\1/p')
    [[ -n $k ]] || { echo "no API key was made" >&2; exit 1; }
    many 200 /api/auth/me -H "Cookie: $c"
    many 200 /api/auth/me -H "Authorization: Bearer $k"
    many 200 /api/authz/forward-auth -H "Cookie: $c" -H 'Accept: text/html' -H 'X-Forwarded-Method: GET' \
        -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Host: app42.bench.test' -H 'X-Forwarded-Uri: /dashboard'
    many 100 /api/authz/forward-auth -H "Authorization: Bearer $k" -H 'X-Forwarded-Method: GET' \
        -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Host: app7.bench.test' -H 'X-Forwarded-Uri: /api/items'
    many 100 /api/authz/auth-request -H "Cookie: $c" -H 'X-Original-Method: GET' \
        -H 'X-Original-URL: https://app42.bench.test/dashboard'
    many 200 /healthz
    many 50 /login -H 'Accept-Encoding: gzip'
    callgrind_control -d "$PID" >/dev/null 2>&1
}

# The first start of an instance (it makes the database and the admin), then a start of an
# existing one, as every restart is: their functions differ, and both belong to the start.
start first "sqlite://$TMP/h.db"; stop
start again "sqlite://$TMP/h.db"; requests; stop
# The same on PostgreSQL (libpq, the change listener), where its server binaries are found.
if pg_bin_dir >/dev/null 2>&1; then
    pg_start "$TMP" || { echo "could not start PostgreSQL (see $TMP/pg/server.log)" >&2; exit 1; }
    start pgfirst "$PG_URL"; stop
    start pgagain "$PG_URL"; requests; stop
    pg_stop
else
    echo "no PostgreSQL server binaries: the order covers SQLite only" >&2
fi

python3 - "$BIN" "$TMP" "$OUT" "$("${RUSTC:-rustc}" -V)" <<'PY'
import glob, re, sys
binary, tmp, out, rustc = sys.argv[1:]

def fnv1a(path):
    """FNV-1a (64 bits) of a file, as build.rs computes it to tell whether the order is stale."""
    h = 0xcbf29ce484222325
    for b in open(path, "rb").read():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"

def self_cost(path):
    """Instructions per function of `binary` in one callgrind dump (uncompressed names)."""
    cost, ob, fn, after_call = {}, None, None, False
    for line in open(path, errors="replace"):
        if line.startswith("ob="):
            ob = line[3:].strip()
        elif line.startswith("fn="):
            fn = line[3:].strip().split("'")[0]  # name'2: callgrind's recursion depth
        elif line.startswith("calls="):
            after_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_call:  # the cost of the call just named, not of this function
                after_call = False
            elif ob == binary and fn:
                cost[fn] = cost.get(fn, 0) + int(line.split()[-1])
    return cost

def dump(tag, n):
    files = glob.glob(f"{tmp}/{tag}.*.{n}")
    if len(files) != 1:
        sys.exit(f"expected one callgrind dump {tag} number {n}, found {files}")
    return self_cost(files[0])

def add(into, more):
    for f, c in more.items():
        into[f] = into.get(f, 0) + c

start, requests = {}, {}
for tag in ("first", "again", "pgfirst", "pgagain"):
    if glob.glob(f"{tmp}/{tag}.*"):
        add(start, dump(tag, 1))
for tag in ("again", "pgagain"):
    if glob.glob(f"{tmp}/{tag}.*"):
        add(requests, dump(tag, 2))
hot = sorted((f for f in requests if requests[f] > 0), key=lambda f: -requests[f])
seen = set(hot)
rest = sorted((f for f in start if start[f] > 0 and f not in seen), key=lambda f: -start[f])
# A name that is not a plain symbol (valgrind's own placeholders) is of no use to the linker.
names = [f for f in hot + rest if re.fullmatch(r"[A-Za-z_.$][\w.$]*", f)]
with open(out, "w") as o:
    o.write("# Generated by bench/link-order.sh: the functions a start and the hot requests run,\n")
    o.write("# for lld's --symbol-ordering-file (build.rs). Regenerate after a compiler, Cargo.lock\n")
    o.write("# or release-profile change. "
            f"{len(hot)} functions of the request path, then {len(rest)} of the start.\n")
    # What the symbols' hashes depend on; build.rs warns when a build's differ.
    o.write(f"# inputs: {rustc}; Cargo.lock {fnv1a('Cargo.lock')}; Cargo.toml {fnv1a('Cargo.toml')}\n")
    for f in names:
        o.write(f + "\n")
skipped = [f for f in hot + rest if f not in set(names)]
if skipped:
    print("not symbol names, left out: " + ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
print(f"{out}: {len(hot)} request-path functions, {len(rest)} start-up functions, "
      f"{len(hot) + len(rest) - len(names)} names skipped")
PY
