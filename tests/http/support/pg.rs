//! A throwaway PostgreSQL server for the whole test process, and a fresh database per test.
//!
//! `HALLPASS_TEST_DATABASE_URL` (a server URL whose user may CREATE DATABASE) wins. Otherwise
//! a cluster is initialised in a temp dir (as the `postgres` OS user when running as root,
//! since initdb refuses root) and started on a random loopback port. It is stopped and
//! deleted when this process exits: a small shell wrapper holds the stdin of the test
//! process and shuts the server down when that pipe closes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};

pub struct Server {
    /// `postgres://user@127.0.0.1:PORT` without a database name.
    pub base: String,
    /// Keeps the wrapper's stdin open for as long as the test process lives.
    _keepalive: Option<Mutex<ChildStdin>>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// Whether PostgreSQL tests must run (CI) rather than be skipped.
pub fn required() -> bool {
    std::env::var("HALLPASS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
        || std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A URL to a new, empty database, or why there is none.
pub fn fresh_database() -> Result<String, String> {
    let server = SERVER.get_or_init(start).as_ref().map_err(Clone::clone)?;
    let name = format!("hp_{}", random_suffix());
    let mut admin = PgConnection::establish(&format!("{}/postgres", server.base))
        .map_err(|e| format!("cannot connect to the test PostgreSQL server: {e}"))?;
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .map_err(|e| format!("CREATE DATABASE failed: {e}"))?;
    Ok(format!("{}/{name}", server.base))
}

/// Members of this role sign in to the built-in cluster with a password (scram-sha-256);
/// everyone else is trusted.
const PASSWORD_ROLE: &str = "hallpass_password_auth";

/// A new, empty database owned by a new role that must give `password` to connect (on the
/// built-in cluster only: an external server's authentication is not ours to change).
/// Returns the URL without the password.
pub fn fresh_database_with_password(password: &str) -> Result<String, String> {
    let server = SERVER.get_or_init(start).as_ref().map_err(Clone::clone)?;
    if server._keepalive.is_none() {
        return Err(
            "password sign-in needs the built-in test cluster, not HALLPASS_TEST_DATABASE_URL"
                .into(),
        );
    }
    let name = format!("hp_{}", random_suffix());
    let mut admin = PgConnection::establish(&format!("{}/postgres", server.base))
        .map_err(|e| format!("cannot connect to the test PostgreSQL server: {e}"))?;
    for sql in [
        format!(
            "DO $$ BEGIN CREATE ROLE {PASSWORD_ROLE} NOLOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ),
        format!(
            "CREATE ROLE {name} LOGIN PASSWORD '{}' IN ROLE {PASSWORD_ROLE}",
            password.replace('\'', "''")
        ),
        format!("CREATE DATABASE {name} OWNER {name}"),
    ] {
        diesel::sql_query(&sql)
            .execute(&mut admin)
            .map_err(|e| format!("{sql}: {e}"))?;
    }
    let host = server.base.trim_start_matches("postgres://postgres@");
    Ok(format!("postgres://{name}@{host}/{name}"))
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// A cluster of its own that takes TCP connections over TLS only (`hostssl`; plain ones are
/// rejected), with `cert` and `key` (PEM) as its server certificate: for the tests of the
/// PostgreSQL client's TLS. Stopped and removed when the returned server is dropped.
pub fn tls_cluster(cert: &Path, key: &Path) -> Result<Server, String> {
    start_cluster(Some((cert, key)))
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("HALLPASS_TEST_DATABASE_URL") {
        let base = match url.rfind('/') {
            Some(i)
                if url[..i].contains('@') || url[..i].ends_with(|c: char| c.is_ascii_digit()) =>
            {
                url[..i].to_owned()
            }
            _ => url.trim_end_matches('/').to_owned(),
        };
        return Ok(Server {
            base,
            _keepalive: None,
        });
    }
    start_cluster(None)
}

/// initdb, then `postgres` on a free port; with `tls`, only TLS connections over TCP.
fn start_cluster(tls: Option<(&Path, &Path)>) -> Result<Server, String> {
    let bin =
        find_bin_dir().ok_or("no PostgreSQL server binaries (initdb) under /usr/lib/postgresql")?;
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("hallpass-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let data = dir.join("data");
    if root {
        run(Command::new("chown").arg("postgres:").arg(&dir))?;
    }
    let initdb = format!(
        "{}/initdb -D {} -U postgres -A trust -E UTF8 --no-sync --no-instructions >/dev/null",
        bin.display(),
        data.display()
    );
    run(&mut as_postgres(root, &initdb))?;
    // First match wins: members of PASSWORD_ROLE must give their password over TCP.
    let hba = data.join("pg_hba.conf");
    let trusted = std::fs::read_to_string(&hba).map_err(|e| e.to_string())?;
    let mut rules = format!("host all +{PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n");
    let mut options = String::new();
    if let Some((cert, key)) = tls {
        rules =
            "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n".into();
        // The server reads its key only if no one else can: mode 0600, owned by its user.
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            let to = dir.join(to);
            std::fs::copy(from, &to).map_err(|e| format!("{}: {e}", from.display()))?;
            run(Command::new("chmod").arg("600").arg(&to))?;
            if root {
                run(Command::new("chown").arg("postgres:").arg(&to))?;
            }
        }
        options = format!(
            " -c ssl=on -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key",
            d = dir.display()
        );
    }
    std::fs::write(&hba, format!("{rules}{trusted}")).map_err(|e| e.to_string())?;
    let port = super::free_port();
    // The server lives as long as our stdin pipe; when the test process exits, `read`
    // returns, and the server is stopped quickly and its files removed.
    let script = format!(
        "{bin}/postgres -D {data} -c listen_addresses=127.0.0.1 -p {port} -k {dir} \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300{options} \
         >{dir}/server.log 2>&1 & pid=$!; read _; kill -INT $pid; wait $pid; rm -rf {dir}",
        bin = bin.display(),
        data = data.display(),
        dir = dir.display(),
    );
    let mut child = as_postgres(root, &script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let stdin = child
        .stdin
        .take()
        .ok_or("no stdin for the postgres wrapper")?;
    let base = format!("postgres://postgres@127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgConnection::establish(&format!("{base}/postgres")) {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                return Err(format!("PostgreSQL did not start: {e}\n{log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let mut stdin = stdin;
    let _ = stdin.flush();
    Ok(Server {
        base,
        _keepalive: Some(Mutex::new(stdin)),
    })
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn as_postgres(root: bool, script: &str) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
