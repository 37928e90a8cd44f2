//! Small helpers shared by the emulator's HTTP handlers.

use std::convert::Infallible;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

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

/// Reads a request body, keeping at most `limit` bytes in memory but counting all of them.
pub(crate) async fn read_limited(mut body: Incoming, limit: usize) -> PostedBody {
    let mut buf = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    total = total.saturating_add(data.len());
                    if total <= limit {
                        buf.extend_from_slice(&data);
                    }
                }
            }
            Err(_) => return PostedBody::Truncated,
        }
    }
    if total > limit {
        PostedBody::TooLarge(total)
    } else {
        PostedBody::Complete(buf.freeze())
    }
}
