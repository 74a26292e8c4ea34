//! A real Caddy (Debian's package, 2.6) in front of test servers, from a Caddyfile the test
//! gives — usually a snippet of `docs/forward-auth.md` (see `snippet`).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/bin/caddy";

/// Global options that keep a test's Caddy to itself: no admin endpoint (it would take port
/// 2019, shared by every test), no certificates, loopback only, plain HTTP/1.1 (no UDP port).
const GLOBAL: &str = "{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n\tservers {\n\t\tprotocols h1\n\t}\n}\n";

pub struct Caddy {
    child: Child,
    dir: tempfile::TempDir,
}

impl Caddy {
    /// Caddy serving `sites` (site blocks with `http://` addresses on `ports`), once every
    /// port accepts connections. `None` when Caddy is not installed and not required
    /// (`HALLPASS_REQUIRE_POSTGRES` / `CI`, as for the other real parts).
    pub fn start(sites: &str, ports: &[u16]) -> Option<Caddy> {
        if !std::path::Path::new(BIN).exists() {
            assert!(
                !super::pg::required(),
                "Caddy is required (CI / HALLPASS_REQUIRE_POSTGRES) but {BIN} is missing: apt-get install caddy"
            );
            eprintln!("\n!!!!! SKIPPING a Caddy test: {BIN} is missing\n");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, format!("{GLOBAL}{sites}")).unwrap();
        let log = std::fs::File::create(dir.path().join("caddy.log")).unwrap();
        // Caddy keeps state under $HOME / XDG directories: all of it in the temp dir.
        let child = Command::new(BIN)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut caddy = Caddy { child, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        for port in ports {
            while TcpStream::connect(("127.0.0.1", *port)).is_err() {
                if let Ok(Some(status)) = caddy.child.try_wait() {
                    panic!(
                        "caddy exited ({status}) before listening:\n{}\n--- Caddyfile:\n{GLOBAL}{sites}",
                        caddy.log()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "caddy did not listen on {port}:\n{}",
                    caddy.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(caddy)
    }

    /// What Caddy logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default()
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
