//! The HTTP/1 serving loop: accepts connections up to a cap, gives each a deadline for its
//! request head and for idling between requests, and shuts down gracefully.
//!
//! `axum::serve` offers none of this (it sets no timer, so hyper's head timeout is off, and it
//! accepts without limit): clients that opened sockets and never finished a request head held
//! them forever, and past the open-file limit nobody else could connect — with nothing logged.

mod head_timer;
mod unread_body;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower::{Service, ServiceExt};

use crate::config::ServerConfig;
use head_timer::{CountingIo, HeadTimer, Progress};
use unread_body::DrainLimits;

/// Open files kept free for everything that is not a client connection: the database pool
/// (SQLite keeps several files per connection), the listener, logs, outgoing OpenID requests.
const RESERVED_FILES: u64 = 64;
/// The derived connection cap never goes above this: a homelab sign-in server with more
/// clients than this at once is under attack, and each connection costs memory.
const AUTO_MAX: u64 = 4096;
/// How long shutdown waits for in-flight requests before closing what is left.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// A repeated warning (cap reached, accept failing) is logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The limits every connection is served under (from `[server]`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request head must be complete this long after the connection opened or its first
    /// byte arrived; also bounds reading a body left unread by a refusal.
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub keep_alive_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Largest unread body read and discarded to keep a connection (`server.body_limit`).
    pub drain_bytes: usize,
}

impl ConnectionLimits {
    /// The limits for `server`, deriving the connection cap from the process's open-file
    /// limit when `server.max_connections` is unset; logs what was chosen and why.
    pub fn from_config(server: &ServerConfig) -> Self {
        let files = open_file_limit();
        let max_connections = match server.max_connections {
            Some(n) => {
                if let Some(files) = files
                    && (n as u64).saturating_add(RESERVED_FILES) > files
                {
                    tracing::warn!(
                        "server.max_connections = {n} leaves fewer than {RESERVED_FILES} of the process's {files} open files for the database and outgoing requests: when that many clients connect, new connections fail. Raise the limit (systemd LimitNOFILE=, docker --ulimit nofile=, ulimit -n) or lower server.max_connections."
                    );
                }
                n
            }
            None => auto_max_connections(files),
        };
        tracing::info!(
            max_connections,
            open_file_limit = files.map_or_else(|| "unknown".to_owned(), |f| f.to_string()),
            header_timeout = ?server.header_timeout.get(),
            keep_alive_timeout = ?server.keep_alive_timeout.get(),
            "connection limits (server.max_connections, server.header_timeout, server.keep_alive_timeout)"
        );
        Self {
            header_timeout: server.header_timeout.get(),
            keep_alive_timeout: server.keep_alive_timeout.get(),
            max_connections,
            drain_bytes: server.body_limit,
        }
    }
}

/// Three quarters of the open-file limit (the rest for the database and outgoing requests),
/// at most [`AUTO_MAX`]; 768 (as for the usual limit of 1024) where the limit is unknown.
fn auto_max_connections(files: Option<u64>) -> usize {
    let cap = files.map_or(768, |f| (f / 4 * 3).min(AUTO_MAX)).max(1);
    usize::try_from(cap).unwrap_or(768)
}

/// The soft `RLIMIT_NOFILE` of this process, read from `/proc/self/limits` (Linux; `None`
/// elsewhere). Safe code cannot call `getrlimit`, and this needs no extra crate.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
    {
        "unlimited" => Some(u64::MAX),
        soft => soft.parse().ok(),
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests
/// finish (at most [`SHUTDOWN_GRACE`]). The router sees each client's `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let mut make = router.into_make_service_with_connect_info::<SocketAddr>();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut at_cap = Throttled::default();
    let mut accept_failing = Throttled::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Forget finished connection tasks.
        while connections.try_join_next().is_some() {}
        // Take a slot before accepting: at the cap, new clients wait in the kernel's listen
        // queue (and are served as slots free up) instead of taking file descriptors.
        let permit = match slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if let Some(since) = at_cap.due() {
                    tracing::warn!(
                        address = %local,
                        max_connections = limits.max_connections,
                        times_since_last_warning = since,
                        "connection limit reached (server.max_connections): new clients wait until a connection closes. Idle and slow connections are closed after server.keep_alive_timeout and server.header_timeout."
                    );
                }
                tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break, // never closed; stop rather than spin
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_failed(&e, local, &mut accept_failing).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = match ServiceExt::<SocketAddr>::ready(&mut make).await {
            Ok(make) => match make.call(remote).await {
                Ok(service) => service,
                Err(never) => match never {},
            },
            Err(never) => match never {},
        };
        connections.spawn(serve_connection(
            stream,
            remote,
            service,
            limits,
            permit,
            graceful.watcher(),
        ));
    }
    // Stop listening first: clients that arrive from now on are refused, not left queued.
    drop(listener);
    while connections.try_join_next().is_some() {}
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            open,
            "waiting for open connections to finish their requests"
        );
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still busy after {SHUTDOWN_GRACE:?}: closing them"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// One connection: HTTP/1 with keep-alive, the head and idle deadlines, and the unread-body
/// guard around every request. Holds its slot until the connection is closed.
fn serve_connection<S>(
    stream: TcpStream,
    remote: SocketAddr,
    service: S,
    limits: ConnectionLimits,
    permit: OwnedSemaphorePermit,
    watcher: Watcher,
) -> impl Future<Output = ()> + Send + 'static
where
    S: Service<Request, Response = axum::response::Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    // Small responses go out at once instead of waiting for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let progress = Arc::new(Progress::default());
    let io = TokioIo::new(CountingIo::new(stream, progress.clone()));
    let drain = DrainLimits {
        bytes: limits.drain_bytes,
        time: limits.header_timeout,
    };
    let per_request = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let service = service.clone();
        async move { Ok::<_, Infallible>(unread_body::answer(service, req.map(Body::new), drain).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(HeadTimer::new(
            progress,
            limits.header_timeout,
            limits.keep_alive_timeout,
        ))
        .header_read_timeout(limits.header_timeout);
    let connection = watcher.watch(builder.serve_connection(io, per_request));
    async move {
        if let Err(e) = connection.await {
            // Head timeouts, resets, garbage: the client's problem, not an event to log.
            tracing::debug!(peer = %remote, error = %e, "connection closed");
        }
        drop(permit);
    }
}

/// Accept errors. A connection that failed before it was accepted is only skipped; anything
/// else (out of file descriptors: EMFILE/ENFILE) is logged and retried after a pause, or the
/// loop would spin on it.
async fn accept_failed(e: &io::Error, local: SocketAddr, log: &mut Throttled) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    if let Some(since) = log.due() {
        tracing::error!(
            address = %local,
            error = %e,
            times_since_last_warning = since,
            "cannot accept connections; retrying. If this is \"Too many open files\", lower server.max_connections or raise the open-file limit."
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// A warning that may repeat many times a second, logged at most every [`WARN_EVERY`].
#[derive(Debug, Default)]
struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    /// `Some(n)` when it is time to log again (`n` occurrences were not logged since).
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < WARN_EVERY)
        {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_cap_leaves_files_for_the_rest() {
        assert_eq!(auto_max_connections(Some(1024)), 768);
        assert_eq!(auto_max_connections(Some(1_048_576)), 4096);
        assert_eq!(auto_max_connections(Some(1)), 1);
        assert_eq!(auto_max_connections(None), 768);
    }

    #[test]
    fn a_repeated_warning_is_logged_once_a_minute() {
        let mut t = Throttled::default();
        assert_eq!(t.due(), Some(0));
        assert_eq!(t.due(), None);
        assert_eq!(t.due(), None);
        t.last = Instant::now().checked_sub(WARN_EVERY);
        assert_eq!(t.due(), Some(2));
    }

    #[test]
    fn the_open_file_limit_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(open_file_limit().is_some_and(|n| n > 0));
        }
    }
}
