//! Deadlines for request heads, told apart from the idle wait between keep-alive requests.
//!
//! hyper's HTTP/1 server uses its timer for one thing: `header_read_timeout`, armed the moment
//! it starts waiting for a request head — when the connection opens, and again as soon as a
//! response has been sent. Used as is, that one deadline would also end every idle keep-alive
//! connection after the (short) head timeout. This timer tells the two waits apart, the way
//! nginx does with `client_header_timeout` and `keepalive_timeout`:
//! - the first head of a connection must be complete `head` after the connection opened;
//! - after a response, the connection may idle for `idle`; once a byte of the next request
//!   arrives, the rest of its head must follow within `head`.
//!
//! It learns about arriving bytes from [`CountingIo`], which wraps the socket. hyper polls the
//! deadline after every read that leaves the head incomplete, so the switch from the idle wait
//! to the head deadline happens when the first byte is read. (A partial head that arrived in
//! the same read as the previous request counts as idle time: it only gets the longer wait.)

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What one connection has read so far, shared by its socket wrapper and its timer.
#[derive(Debug, Default)]
pub(super) struct Progress {
    bytes_read: AtomicU64,
    /// Set once the first head deadline has been armed: every later one follows a response.
    first_armed: AtomicBool,
}

impl Progress {
    fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }
}

/// The client socket, counting the bytes read from it.
pub(super) struct CountingIo {
    inner: TcpStream,
    progress: Arc<Progress>,
}

impl CountingIo {
    pub(super) fn new(inner: TcpStream, progress: Arc<Progress>) -> Self {
        Self { inner, progress }
    }
}

impl AsyncRead for CountingIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            this.progress
                .bytes_read
                .fetch_add(read as u64, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for CountingIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The timer given to one connection's hyper builder, whose `header_read_timeout` is `head`.
pub(super) struct HeadTimer {
    progress: Arc<Progress>,
    head: Duration,
    idle: Duration,
}

impl HeadTimer {
    pub(super) fn new(progress: Arc<Progress>, head: Duration, idle: Duration) -> Self {
        Self {
            progress,
            head,
            idle,
        }
    }
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        if !self.progress.first_armed.swap(true, Ordering::Relaxed) {
            return Box::pin(Deadline {
                sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
                idle_since: None,
                head: self.head,
                progress: self.progress.clone(),
            });
        }
        // hyper asked for "now + head": the idle wait for the next request starts now.
        let armed_at = deadline.checked_sub(self.head).unwrap_or_else(Instant::now);
        Box::pin(Deadline {
            sleep: Box::pin(tokio::time::sleep_until((armed_at + self.idle).into())),
            idle_since: Some(self.progress.bytes_read()),
            head: self.head,
            progress: self.progress.clone(),
        })
    }
}

/// A head deadline. While `idle_since` holds the byte count at arming, no byte of the next
/// request has been read and the idle wait applies.
struct Deadline {
    sleep: Pin<Box<tokio::time::Sleep>>,
    idle_since: Option<u64>,
    head: Duration,
    progress: Arc<Progress>,
}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if let Some(seen) = this.idle_since
            && this.progress.bytes_read() != seen
        {
            this.idle_since = None;
            let head_deadline = tokio::time::Instant::now() + this.head;
            this.sleep.as_mut().reset(head_deadline);
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl Sleep for Deadline {}
