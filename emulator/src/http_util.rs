//! Small helpers shared by the emulator's HTTP handlers.

use std::convert::Infallible;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};

use crate::calls::PostedBody;

/// The body of the emulator's replies: whole, or streamed (`InvokeWithResponseStream`).
pub(crate) type ReplyBody = UnsyncBoxBody<Bytes, Infallible>;

/// The emulator's reply type.
pub(crate) type Reply = Response<ReplyBody>;

/// A JSON reply.
pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// How long a client may leave a request body without sending more of it.
pub(crate) const BODY_STALL: Duration = Duration::from_secs(10);

/// Reads a request body of at most `limit` bytes. A larger one is not read further:
/// `TooLarge` carries the size its `Content-Length` declared, or what arrived before the
/// limit was passed. A body that stops arriving for [`BODY_STALL`] counts as truncated.
pub(crate) async fn read_limited(mut body: Incoming, limit: usize) -> PostedBody {
    let declared = body.size_hint().exact().map(|n| n as usize);
    if let Some(n) = declared.filter(|n| *n > limit) {
        return PostedBody::TooLarge(n);
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0));
    loop {
        let frame = match tokio::time::timeout(BODY_STALL, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(None) => break,
            Ok(Some(Err(_))) | Err(_) => return PostedBody::Truncated,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return PostedBody::TooLarge(buf.len() + data.len());
            }
            buf.extend_from_slice(&data);
        }
    }
    PostedBody::Complete(buf.freeze())
}
