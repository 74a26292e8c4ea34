//! A real nginx (Debian's package) in front of a test server, with the configuration a
//! homelab owner writes first: a bare `proxy_pass`, no forwarding headers.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = "/usr/sbin/nginx";

pub struct Nginx {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx on 127.0.0.1 proxying everything to `upstream` with `location_extra` inside
    /// `location /` (after `proxy_pass`). `None` when nginx is not installed and not required
    /// (`HALLPASS_REQUIRE_POSTGRES` / `CI`, as for the other real parts).
    pub fn start(upstream: SocketAddr, location_extra: &str) -> Option<Nginx> {
        let port = super::free_port();
        let server = format!(
            "server {{\n\
               listen 127.0.0.1:{port};\n\
               location / {{\n\
                 proxy_pass http://{upstream};\n\
                 {location_extra}\n\
               }}\n\
             }}\n"
        );
        Self::start_servers(&server, port)
    }

    /// nginx with whole `server` blocks of the test's (a forward-auth setup needs locations
    /// of its own), once `port` — one the blocks listen on — accepts connections.
    pub fn start_servers(servers: &str, port: u16) -> Option<Nginx> {
        if !std::path::Path::new(BIN).exists() {
            assert!(
                !super::pg::required(),
                "nginx is required (CI / HALLPASS_REQUIRE_POSTGRES) but {BIN} is missing: apt-get install nginx"
            );
            eprintln!("\n!!!!! SKIPPING an nginx test: {BIN} is missing\n");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // nginx's workers run as an unprivileged user when the tests run as root.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let d = dir.path().display();
        let conf = format!(
            "worker_processes 1;\n\
             daemon off;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
               access_log off;\n\
               client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               {servers}\n\
             }}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(BIN)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut nginx = Nginx {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = std::fs::read_to_string(nginx._dir.path().join("error.log"))
                    .unwrap_or_default();
                panic!("nginx exited ({status}) before listening: {log}");
            }
            assert!(Instant::now() < deadline, "nginx did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(nginx)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // A killed master leaves its workers behind: ask it to stop (SIGTERM via the pid
        // file), and kill it only if it does not.
        let dir = self._dir.path();
        let _ = Command::new(BIN)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-s", "stop"])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
