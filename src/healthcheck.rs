//! `hallpass healthcheck`: asks the running server's `/readyz` on the configured address;
//! exit 0 when it answers 200, 1 otherwise. For container health checks, so that the image
//! needs no curl.
//!
//! One HTTP/1.1 request over a plain loopback socket, written by hand: the server speaks plain
//! HTTP on `server.bind`, the answer's status line is all that is read, and an async HTTP
//! client with its runtime would cost more start-up than the request itself.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use hallpass::config::Config;

/// Connect, send and read: each within this.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The status line and a little more: nothing else of the answer is read.
const READ_CAP: usize = 1024;

pub fn run(config: &Config) -> ExitCode {
    let addr = local_address(config.server.bind);
    match ready(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("unhealthy: http://{addr}/readyz: {why}");
            ExitCode::FAILURE
        }
    }
}

/// Where to reach a server bound to `bind`: a wildcard address is reached on the loopback
/// address of its family.
fn local_address(bind: SocketAddr) -> SocketAddr {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bind.port())
}

fn ready(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::with_capacity(READ_CAP);
    stream
        .take(READ_CAP as u64)
        .read_to_end(&mut answer)
        .map_err(|e| e.to_string())?;
    let status_line = answer
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_owned())
        .unwrap_or_default();
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(()),
        Some(_) => Err(format!("answered {status_line:?}")),
        None => Err("no HTTP answer".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_wildcard_bind_is_reached_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:8700".parse().unwrap();
        assert_eq!(local_address(v4).to_string(), "127.0.0.1:8700");
        let v6: SocketAddr = "[::]:8700".parse().unwrap();
        assert_eq!(local_address(v6).to_string(), "[::1]:8700");
        let exact: SocketAddr = "127.0.0.2:9000".parse().unwrap();
        assert_eq!(local_address(exact), exact);
    }
}
