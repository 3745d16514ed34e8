//! The HTTP face of [`crate::server::ChatKitServer`]: [`ChatKitResponse`] (a JSON body or an SSE stream)
//! and its axum conversion.
//!
//! A stream's body is the concatenation of the `data: <json>\n\n` frames the turn produced and
//! nothing else: the client reads no `event:` or `id:` lines, and the Python SDK sends no keep-alive
//! comments, so neither do we. Dropping the body (the client disconnected) drops the channel receiver,
//! which is how the turn learns the client went away.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

/// `content-type` of streaming responses (what Starlette sends for the SDK).
pub(crate) const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

/// The SSE frames of one streaming response, in order. Dropping it tells the producer the client left.
#[derive(Debug)]
pub struct SseStream {
    rx: mpsc::Receiver<Bytes>,
    /// Counts the stream in the open-streams gauge while it lives (a turn's stream only).
    _open: Option<crate::metrics::OpenStream>,
}

impl SseStream {
    /// Wraps the receiving end of a turn's frame channel.
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        SseStream { rx, _open: Some(crate::metrics::OpenStream::open()) }
    }

    /// A stream of the given frames that ends after them.
    pub fn from_frames(frames: Vec<Bytes>) -> Self {
        let (tx, rx) = mpsc::channel(frames.len().max(1));
        for frame in frames {
            // Capacity equals the number of frames and the receiver is alive: cannot fail.
            let _ = tx.try_send(frame);
        }
        SseStream { rx, _open: None }
    }

    /// Reads the whole stream into one buffer (for tests and non-HTTP callers).
    pub async fn collect_bytes(mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(frame) = self.rx.recv().await {
            out.extend_from_slice(&frame);
        }
        out
    }
}

impl Stream for SseStream {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.rx.poll_recv(cx)
    }
}

/// What [`crate::server::ChatKitServer::process`] answers.
#[derive(Debug)]
pub enum ChatKitResponse {
    /// A non-streaming result: the JSON bytes of the body (HTTP 200, `application/json`).
    Json(Bytes),
    /// A streaming result: SSE frames (HTTP 200, `text/event-stream; charset=utf-8`).
    Stream(SseStream),
}

impl ChatKitResponse {
    /// Whether this is an SSE stream.
    pub fn is_stream(&self) -> bool {
        matches!(self, ChatKitResponse::Stream(_))
    }
}

impl IntoResponse for ChatKitResponse {
    fn into_response(self) -> Response {
        match self {
            ChatKitResponse::Json(bytes) => {
                let mut res = Response::new(Body::from(bytes));
                res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                res
            }
            ChatKitResponse::Stream(stream) => {
                use futures::StreamExt;
                let body = Body::from_stream(stream.map(Ok::<Bytes, Infallible>));
                let mut res = Response::new(body);
                *res.status_mut() = StatusCode::OK;
                let headers = res.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SSE_CONTENT_TYPE));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
                res
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn from_frames_yields_all_frames_then_ends() {
        let s = SseStream::from_frames(vec![Bytes::from_static(b"data: 1\n\n"), Bytes::from_static(b"data: 2\n\n")]);
        assert_eq!(s.collect_bytes().await, b"data: 1\n\ndata: 2\n\n");
    }

    #[test]
    fn headers_of_both_kinds() {
        let res = ChatKitResponse::Json(Bytes::from_static(b"{}")).into_response();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let res = ChatKitResponse::Stream(SseStream::from_frames(vec![])).into_response();
        assert_eq!(res.headers()[header::CONTENT_TYPE], SSE_CONTENT_TYPE);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
        assert_eq!(res.headers()["x-accel-buffering"], "no");
    }
}
