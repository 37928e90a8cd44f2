//! HTTP/1.1 framing for the Lambda APIs: request heads out, replies in.
//!
//! The Lambda APIs speak plain HTTP/1.1 on loopback (protocol.md §0). The client writes
//! a finished invocation's `/response` and the next `/next` in one go (pipelining), which
//! general-purpose HTTP clients do not offer, so the framing is done here. Replies are
//! read as RFC 9112 says: `Content-Length`, `Transfer-Encoding: chunked` (Go's servers use
//! it for bodies over 2 KB, edge-cases A10), or up to the end of the connection.

use std::fmt::Write as _;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};

use crate::extension_api::headers as extension_headers;
use crate::headers;

/// The longest reply head accepted; Lambda's heads are a few hundred bytes.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The largest reply body accepted. No Lambda API sends more: events stop at 6,291,556
/// bytes (protocol.md §1); anything past this is a broken peer, not an event.
pub(crate) const MAX_BODY: usize = 16 * 1024 * 1024;

/// A reply the client cannot read as HTTP/1.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FramingError(pub(crate) String);

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed HTTP reply: {}", self.0)
    }
}

impl std::error::Error for FramingError {}

fn malformed<T>(what: impl Into<String>) -> Result<T, FramingError> {
    Err(FramingError(what.into()))
}

/// Appends the request line and headers of `req` to `out`, with a `Content-Length` for
/// any body (and for every `POST`, as servers expect one).
pub(crate) fn encode_head(req: &Request<Bytes>, out: &mut BytesMut) {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let body = req.body().len();
    out.reserve(64 + target.len() + 48 * req.headers().len());
    out.put_slice(req.method().as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    if body > 0 || req.method() != Method::GET {
        // Writing into a `BytesMut` cannot fail.
        let _ = write!(out, "content-length: {body}\r\n");
    }
    out.put_slice(b"\r\n");
}

/// How a reply's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Exactly this many bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A reply's status line and headers.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) framing: Framing,
    /// The server keeps the connection open after this reply.
    pub(crate) keep_alive: bool,
}

/// The most header lines a reply may carry.
const MAX_FIELDS: usize = 100;

/// Header names Lambda sends on replies, interned so reading them does not allocate.
const KNOWN_NAMES: [&str; 9] = [
    headers::REQUEST_ID,
    headers::DEADLINE_MS,
    headers::INVOKED_FUNCTION_ARN,
    headers::TRACE_ID,
    headers::CLIENT_CONTEXT,
    headers::COGNITO_IDENTITY,
    headers::TENANT_ID,
    extension_headers::IDENTIFIER,
    extension_headers::EVENT_IDENTIFIER,
];

/// The complete lines at the front of a buffer, each as (start, end of its content
/// without the line ending, start of the next line).
struct Lines<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Iterator for Lines<'_> {
    type Item = (usize, usize, usize);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.at;
        let nl = self.buf[start..].iter().position(|&b| b == b'\n')?;
        self.at = start + nl + 1;
        let end = if nl > 0 && self.buf[start + nl - 1] == b'\r' {
            start + nl - 1
        } else {
            start + nl
        };
        Some((start, end, self.at))
    }
}

fn too_long<T>(buf: &[u8]) -> Result<Option<T>, FramingError> {
    if buf.len() > MAX_HEAD {
        return malformed(format!("the head is longer than {MAX_HEAD} bytes"));
    }
    Ok(None)
}

/// The length of the lines at the front of `buf` through the first empty one (a head, or
/// a chunked body's trailers), once they are all there.
pub(crate) fn head_len(buf: &[u8]) -> Result<Option<usize>, FramingError> {
    match (Lines { buf, at: 0 }).find(|(start, end, _)| start == end) {
        Some((_, _, next)) => Ok(Some(next)),
        None => too_long(buf),
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn header_name(raw: &[u8]) -> Result<HeaderName, FramingError> {
    for known in KNOWN_NAMES {
        if raw.len() == known.len() && raw.eq_ignore_ascii_case(known.as_bytes()) {
            return Ok(HeaderName::from_static(known));
        }
    }
    HeaderName::from_bytes(raw).map_err(|_| FramingError("a header name".into()))
}

/// Takes the head at the front of `buf` once it is complete, in one pass over its lines.
/// Header values share the head's memory.
pub(crate) fn take_head(buf: &mut BytesMut) -> Result<Option<Head>, FramingError> {
    let mut lines = Lines { buf, at: 0 };
    let Some((_, status_end, _)) = lines.next() else {
        return too_long(buf);
    };
    let mut fields = [(0usize, 0usize); MAX_FIELDS];
    let mut count = 0;
    let len = loop {
        let Some((start, end, next)) = lines.next() else {
            return too_long(buf);
        };
        if start == end {
            break next;
        }
        if count == MAX_FIELDS {
            return malformed(format!("more than {MAX_FIELDS} header lines"));
        }
        fields[count] = (start, end);
        count += 1;
    };
    let head = buf.split_to(len).freeze();
    parse_head(head, status_end, &fields[..count]).map(Some)
}

/// Reads the status line (`head[..status_end]`) and the header lines at `fields`.
fn parse_head(
    head: Bytes,
    status_end: usize,
    fields: &[(usize, usize)],
) -> Result<Head, FramingError> {
    let status_line = &head[..status_end];
    let (version, rest) = match status_line {
        [
            b'H',
            b'T',
            b'T',
            b'P',
            b'/',
            b'1',
            b'.',
            minor,
            b' ',
            rest @ ..,
        ] => (*minor, rest),
        _ => {
            return malformed(format!(
                "status line {:?}",
                String::from_utf8_lossy(&status_line[..status_line.len().min(64)])
            ));
        }
    };
    let status = rest
        .get(..3)
        .filter(|_| rest.len() == 3 || rest[3] == b' ')
        .and_then(|code| StatusCode::from_bytes(code).ok())
        .ok_or_else(|| FramingError("status code".into()))?;

    let mut headers = HeaderMap::with_capacity(fields.len());
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut encoded = false;
    let mut close = version == b'0';
    for &(start, end) in fields {
        let line = &head[start..end];
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return malformed("a header line without a colon");
        };
        let name = header_name(&line[..colon])?;
        let value = trim(&line[colon + 1..]);
        // `head` owns these bytes, so the value is a view into it, not a copy.
        let offset = value.as_ptr() as usize - head.as_ptr() as usize;
        let value = HeaderValue::from_maybe_shared(head.slice(offset..offset + value.len()))
            .map_err(|_| FramingError(format!("the value of {name}")))?;
        if name == header::CONTENT_LENGTH {
            let n = std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| FramingError("Content-Length".into()))?;
            if length.is_some_and(|l| l != n) {
                return malformed("two different Content-Length values");
            }
            length = Some(n);
        } else if name == header::TRANSFER_ENCODING {
            encoded = true;
            // Only the last coding decides how the body ends.
            chunked = value
                .as_bytes()
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
        } else if name == header::CONNECTION {
            for token in value.as_bytes().split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
        headers.append(name, value);
    }

    let framing = if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Length(0)
    } else if encoded {
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    if let Framing::Length(n) = framing {
        if n > MAX_BODY {
            return malformed(format!("a body of {n} bytes (more than {MAX_BODY})"));
        }
    }
    Ok(Head {
        status,
        headers,
        keep_alive: !close && framing != Framing::UntilClose,
        framing,
    })
}

/// Moves every complete chunk at the front of `buf` into `body`. `Ok(true)` once the
/// last chunk and any trailers are consumed; `Ok(false)` when more bytes are needed.
pub(crate) fn take_chunks(buf: &mut BytesMut, body: &mut BytesMut) -> Result<bool, FramingError> {
    loop {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > MAX_HEAD {
                return malformed("a chunk size line that never ends");
            }
            return Ok(false);
        };
        let line = &buf[..nl];
        let line = trim(line.strip_suffix(b"\r").unwrap_or(line));
        let digits = line.split(|&b| b == b';').next().map(trim).unwrap_or(line);
        let size = std::str::from_utf8(digits)
            .ok()
            .filter(|d| !d.is_empty() && d.len() <= 8)
            .and_then(|d| usize::from_str_radix(d, 16).ok())
            .ok_or_else(|| FramingError("a chunk size".into()))?;
        if size == 0 {
            // The trailer section ends with an empty line, right after the size line
            // when there are no trailers.
            let Some(end) = head_len(&buf[nl + 1..])? else {
                return Ok(false);
            };
            buf.advance(nl + 1 + end);
            return Ok(true);
        }
        if body.len() + size > MAX_BODY {
            return malformed(format!("a chunked body over {MAX_BODY} bytes"));
        }
        let data = nl + 1;
        // The chunk's data, then its line ending.
        let needed = data + size + 2;
        if buf.len() < needed {
            // Make room for the rest of a large chunk in one step.
            buf.reserve(needed - buf.len());
            return Ok(false);
        }
        match &buf[data + size..needed] {
            b"\r\n" => {}
            [b'\n', _] => return malformed("a chunk ended without CRLF"),
            _ => return malformed("a chunk longer than its size"),
        }
        body.extend_from_slice(&buf[data..data + size]);
        buf.advance(needed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, FramingError> {
        let mut buf = BytesMut::from(text.as_bytes());
        let head = take_head(&mut buf)?.expect("a complete head");
        assert!(buf.is_empty(), "the whole head is taken");
        Ok(head)
    }

    #[test]
    fn requests_are_framed_with_their_length() {
        let mut req = Request::new(Bytes::from_static(b"{}"));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = "/2018-06-01/runtime/invocation/abc/response"
            .parse()
            .unwrap();
        req.headers_mut()
            .insert(header::HOST, HeaderValue::from_static("127.0.0.1:9001"));
        req.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        let mut out = BytesMut::new();
        encode_head(&req, &mut out);
        assert_eq!(
            &out[..],
            b"POST /2018-06-01/runtime/invocation/abc/response HTTP/1.1\r\nhost: 127.0.0.1:9001\r\ncontent-length: 2\r\n\r\n"
        );

        let mut get = Request::new(Bytes::new());
        *get.uri_mut() = "/next".parse().unwrap();
        let mut out = BytesMut::new();
        encode_head(&get, &mut out);
        assert_eq!(&out[..], b"GET /next HTTP/1.1\r\n\r\n");

        let mut empty_post = Request::new(Bytes::new());
        *empty_post.method_mut() = Method::POST;
        *empty_post.uri_mut() = "/x".parse().unwrap();
        let mut out = BytesMut::new();
        encode_head(&empty_post, &mut out);
        assert_eq!(&out[..], b"POST /x HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn heads_are_found_only_when_complete() {
        assert_eq!(head_len(b"HTTP/1.1 200 OK\r\nA: b\r\n").unwrap(), None);
        assert_eq!(
            head_len(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody").unwrap(),
            Some(25)
        );
        assert_eq!(
            head_len(b"HTTP/1.1 200 OK\nA: b\n\nbody").unwrap(),
            Some(22)
        );
        let endless = vec![b'a'; MAX_HEAD + 1];
        assert!(head_len(&endless).unwrap_err().0.contains("longer than"));
    }

    #[test]
    fn heads_are_read_as_lambda_sends_them() {
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id:  8476a536 \r\nContent-Length: 7\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.framing, Framing::Length(7));
        assert!(h.keep_alive);
        assert_eq!(h.headers["lambda-runtime-aws-request-id"], "8476a536");

        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        // Transfer-Encoding wins over Content-Length.
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n")
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked);

        let h = head("HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(!h.keep_alive);
        let h =
            head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        assert!(h.status.is_informational());
        let h = head("HTTP/1.1 403\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(h.status, StatusCode::FORBIDDEN);
    }

    #[test]
    fn broken_heads_are_refused_with_the_reason() {
        let cases = [
            ("HTTP/2 200 OK\r\n\r\n", "status line"),
            ("SSH-2.0-OpenSSH\r\n\r\n", "status line"),
            ("HTTP/1.1 2000 OK\r\n\r\n", "status code"),
            ("HTTP/1.1 abc OK\r\n\r\n", "status code"),
            ("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "colon"),
            ("HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n", "header name"),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                "Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "two different",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n",
                "more than",
            ),
        ];
        for (text, reason) in cases {
            let e = head(text).expect_err(text);
            assert!(e.0.contains(reason), "{text:?}: {e}");
        }
        let crowded = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_FIELDS + 1)
        );
        assert!(head(&crowded).unwrap_err().0.contains("header lines"));
    }

    #[test]
    fn chunked_bodies_are_joined_whatever_the_chunk_boundaries() {
        let wire: &[u8] =
            b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        // Fed one byte at a time and all at once, the body is the same.
        for step in [1, wire.len()] {
            let (mut buf, mut body) = (BytesMut::new(), BytesMut::new());
            let mut fed = 0;
            while !take_chunks(&mut buf, &mut body).unwrap() {
                assert!(fed < wire.len(), "the body never ended");
                let piece = &wire[fed..(fed + step).min(wire.len())];
                buf.extend_from_slice(piece);
                fed += piece.len();
            }
            assert_eq!(&body[..], b"hello world");
            buf.extend_from_slice(&wire[fed..]);
            assert_eq!(
                &buf[..],
                b"NEXT",
                "bytes after the body stay for the next reply"
            );
        }
    }

    #[test]
    fn broken_chunks_are_refused() {
        for (wire, reason) in [
            (&b"zz\r\n"[..], "chunk size"),
            (b"\r\n", "chunk size"),
            (b"3\r\nabcdef\r\n", "longer than its size"),
            (b"fffffffff\r\n", "chunk size"),
            (b"1000001\r\n", "over"),
        ] {
            let (mut buf, mut body) = (BytesMut::from(wire), BytesMut::new());
            let e = take_chunks(&mut buf, &mut body).expect_err(reason);
            assert!(e.0.contains(reason), "{wire:?}: {e}");
        }
    }
}
