//! Keeps a keep-alive connection usable when a request is answered without reading its body.
//!
//! A refusal (401, 403, 413…) is usually decided from the head alone. hyper cannot reuse a
//! connection whose request body was left unread: it closes it after the response without
//! saying so, and the rest of the body, still on its way, makes the kernel reset the socket —
//! the client's next request on that connection fails, or it even loses the response. So,
//! once for every request and the way Go's net/http does it, Hallpass reads and discards what
//! is left of a small body (up to `server.body_limit`, within `server.header_timeout`) before
//! answering. A larger or stalled body, or one the client is holding back until told to send
//! it (`Expect: 100-continue`), gets `Connection: close` instead, so the client knows to open a
//! new connection.
//!
//! The same wrapper bounds reading a body: it must be complete within `server.header_timeout`
//! of the first read, or the request is answered 408 and the connection closed. A client
//! that sends a whole head and then stalls its body would otherwise hold its connection (and
//! a slot under `server.max_connections`) for ever, as a stalled head did.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::{Body as _, Frame, SizeHint};
use tokio::sync::oneshot;
use tower::{Service, ServiceExt};

/// How much of an unread body is read to keep the connection, and how long reading a body
/// (by a handler or to drain it) may take.
#[derive(Debug, Clone, Copy)]
pub(super) struct DrainLimits {
    pub bytes: usize,
    pub time: Duration,
}

/// The error a handler sees when the body stalls.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within server.header_timeout")]
struct BodyTimedOut;

/// Calls `service`; if it answered without reading the whole request body, drains the rest or
/// marks the response `Connection: close`.
pub(super) async fn answer<S>(service: S, req: Request, limits: DrainLimits) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    // GET and friends: nothing to track (the hot paths stay as they were).
    if req.body().is_end_stream() {
        return match service.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    let held_back = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (give_back, mut returned) = oneshot::channel();
    let api = req.uri().path().starts_with("/api/");
    let req = req.map(|inner| {
        Body::new(Tracked {
            inner: Some(inner),
            give_back: Some(give_back),
            read: 0,
            polled: false,
            within: limits.time,
            deadline: None,
            expired: false,
        })
    });
    let mut response = match service.oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    // Nothing came back: the body was read to its end (or is still held somewhere).
    let Ok(left) = returned.try_recv() else {
        return response;
    };
    if left.expired {
        // Whatever the handler made of the failed read (400, 413…), the client was too slow.
        tracing::debug!("a request body stalled: answered 408 and closed the connection");
        response = timed_out(api);
    }
    // hyper sends `100 Continue` when the body is first read: until then the client has not
    // sent it, and inviting it only to throw it away would waste its upload.
    let invited = !held_back || left.polled;
    let keep = !left.expired
        && invited
        && drain(
            left.body,
            limits.bytes.saturating_sub(left.read),
            limits.time,
        )
        .await;
    if !keep {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn timed_out(api: bool) -> Response {
    let message = "The request body did not arrive in time.";
    if api {
        crate::web::error::ApiError::new(StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT", message)
            .into_response()
    } else {
        (StatusCode::REQUEST_TIMEOUT, message).into_response()
    }
}

/// Reads and drops the rest of a body; `false` when it is longer than `budget` bytes, fails,
/// or does not arrive within `within`.
async fn drain(mut body: Body, budget: usize, within: Duration) -> bool {
    let read_all = async {
        let mut left = budget;
        loop {
            match poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => return true,
                Some(Err(_)) => return false,
                Some(Ok(frame)) => {
                    let len = frame.data_ref().map_or(0, Bytes::len);
                    let Some(rest) = left.checked_sub(len) else {
                        return false;
                    };
                    left = rest;
                }
            }
        }
    };
    tokio::time::timeout(within, read_all)
        .await
        .unwrap_or(false)
}

/// What a handler left of a request body.
struct Left {
    body: Body,
    read: usize,
    polled: bool,
    expired: bool,
}

/// A request body that must be complete `within` its first read and that, dropped before its
/// end, hands itself back to [`answer`].
struct Tracked {
    inner: Option<Body>,
    give_back: Option<oneshot::Sender<Left>>,
    read: usize,
    polled: bool,
    within: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: bool,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if this.expired {
            return Poll::Ready(None);
        }
        this.polled = true;
        let within = this.within;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(within)));
        let Poll::Ready(frame) = Pin::new(&mut *inner).poll_frame(cx) else {
            if deadline.as_mut().poll(cx).is_ready() {
                this.expired = true;
                return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
            }
            return Poll::Pending;
        };
        match &frame {
            Some(Ok(f)) => {
                this.read = this.read.saturating_add(f.data_ref().map_or(0, Bytes::len));
                if inner.is_end_stream() {
                    this.give_back = None;
                }
            }
            // The end, or a broken body: either way there is nothing left to drain.
            None | Some(Err(_)) => this.give_back = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let (Some(tx), Some(body)) = (self.give_back.take(), self.inner.take()) {
            let _ = tx.send(Left {
                body,
                read: self.read,
                polled: self.polled,
                expired: self.expired,
            });
        }
    }
}
