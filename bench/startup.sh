#!/usr/bin/env bash
# Start-up time: from exec of the release binary to the first 200 on /healthz, SQLite with
# 100,000 users, ten starts, each printed and the median.
#
#   bench/startup.sh
#   BENCH_USERS=20000 BENCH_STARTS=5 bench/startup.sh
#   HALLPASS_BIN=path/to/hallpass bench/startup.sh
#
# Seeds the database once (the server creates the schema and the admin, then python3's
# sqlite3 module inserts the users — no hashing — and runs ANALYZE), then starts the server
# BENCH_STARTS times on it. Each start is a fresh process on a database that exists already
# (the operating system's file cache is warm: this measures what Hallpass does, not the
# disk). The poller is a python3 process started before the clock runs; it connects every
# millisecond and counts the first `HTTP/1.1 200`. Figures, not tests.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${BENCH_USERS:-100000}
STARTS=${BENCH_STARTS:-10}
PASS="bench-password-123"
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }

if [[ -n ${HALLPASS_BIN:-} ]]; then
    BIN=$HALLPASS_BIN
else
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}
    cargo build --release --locked >&2
    BIN=$CARGO_TARGET_DIR/release/hallpass
fi

WORK=$(mktemp -d /tmp/hallpass-startup-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

python3 - "$BIN" "$WORK" "$USERS" "$STARTS" "$PASS" <<'PY'
import os, random, signal, socket, sqlite3, statistics, subprocess, sys, time

binary, work, users, starts, password = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
db = os.path.join(work, "hallpass.db")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def env(port, admin=False):
    e = dict(os.environ)
    e.update({
        "HALLPASS_SERVER__BIND": f"127.0.0.1:{port}",
        "HALLPASS_DATABASE__URL": f"sqlite://{db}",
        "HALLPASS_SERVER__DATA_DIR": work,
        "RUST_LOG": "warn",
    })
    if admin:
        e.update({"HALLPASS_ADMIN_USERNAME": "admin", "HALLPASS_ADMIN_PASSWORD": password})
    return e

def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False

def start(admin=False):
    """Starts the server; returns (process, seconds from exec to the first 200)."""
    port = free_port()
    log = open(os.path.join(work, "server.log"), "ab")
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "serve"], env=env(port, admin), stdout=log, stderr=log)
    while True:
        if healthy(port):
            return p, time.perf_counter() - t0
        if p.poll() is not None:
            sys.exit(f"server exited with {p.returncode}; see {work}/server.log:\n" + open(os.path.join(work, "server.log")).read())
        if time.perf_counter() - t0 > 30:
            sys.exit("no 200 on /healthz within 30 s")
        time.sleep(0.001)

def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)

# Seed once: schema and admin by the server itself, then the users.
p, _ = start(admin=True)
stop(p)
c = sqlite3.connect(db, timeout=30)
roles = ["user"] * 6 + ["viewer"] * 3 + ["admin"]
statuses = ["active"] * 8 + ["pending", "disabled"]
rows = []
for i in range(users):
    r = random.choice(roles); s = "active" if r == "admin" else random.choice(statuses)
    last = None if i % 4 == 0 else 1_700_000_000 + random.randint(0, 30_000_000)
    rows.append((f"user{i:06d}", f"user{i:06d}", f"user{i}@example.com", f"user{i}@example.com",
                 f"User {i}", r, s, 1_600_000_000 + i, 0, last))
c.executemany("INSERT INTO users (username, username_key, email, email_key, display_name, role, status, "
              "session_version, created_at, updated_at, last_login_at) VALUES (?,?,?,?,?,?,?,1,?,?,?)", rows)
c.commit(); c.execute("ANALYZE"); c.commit()
count = c.execute("SELECT COUNT(*) FROM users").fetchone()[0]
c.close()

# One start untimed, so every timed start finds the same warm file cache.
p, _ = start(); stop(p)
times = []
print(f"\n## start-up, exec to first 200 on /healthz (SQLite, {count} users, release build)\n")
for i in range(starts):
    p, t = start()
    stop(p)
    times.append(t * 1000)
    print(f"start {i + 1:2d}: {t * 1000:6.1f} ms")
print(f"\nmedian of {starts}: {statistics.median(times):.1f} ms (min {min(times):.1f}, max {max(times):.1f})")
PY
