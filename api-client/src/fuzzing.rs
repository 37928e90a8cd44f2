//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, not a public API):
//! each runs a crate-private reader over arbitrary bytes.

use bytes::BytesMut;

use crate::http1;
use crate::runtime_api::NextHeaders;

/// A reply as the client reads it: the head, then a chunked body after it.
pub fn reply(bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    if let Ok(Some(head)) = http1::take_head(&mut buf) {
        let _ = head.raw.fields().count();
        let mut body = BytesMut::new();
        let _ = http1::take_chunks(&mut buf, &mut body);
    }
    let mut buf = BytesMut::from(bytes);
    let mut body = BytesMut::new();
    let _ = http1::take_chunks(&mut buf, &mut body);
}

/// The invocation headers of a `/next` reply whose head is `bytes`.
pub fn next_headers(bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    if let Ok(Some(head)) = http1::take_head(&mut buf) {
        let _ = NextHeaders::from_fields(head.raw.fields());
    }
}
