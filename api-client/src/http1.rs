//! HTTP/1.1 framing for the Lambda APIs: request heads out, replies in.
//!
//! The Lambda APIs speak plain HTTP/1.1 on loopback (protocol.md §0). The client writes
//! a finished invocation's `/response` and the next `/next` in one go (pipelining), which
//! general-purpose HTTP clients do not offer, so the framing is done here. Reply heads are
//! parsed by `httparse` (measured: about 130 more instructions per invocation than the
//! hand-written scanner it replaced, 0.6%); bodies are read as RFC 9112 says:
//! `Content-Length`, `Transfer-Encoding: chunked` (Go's servers use it for bodies over
//! 2 KB, edge-cases A10), or up to the end of the connection.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{Method, Request, StatusCode, header};

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
/// any body (and for every `POST`, as servers expect one). A request that carries
/// `Transfer-Encoding: chunked` gets no length: its body follows in chunks
/// ([`chunk_size_line`], [`last_chunk`]).
pub(crate) fn encode_head(req: &Request<Bytes>, out: &mut BytesMut) {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let body = req.body().len();
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
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
    if chunked {
        out.put_slice(b"transfer-encoding: chunked\r\n");
    } else if body > 0 || req.method() != Method::GET {
        put_content_length(body, out);
    }
    out.put_slice(b"\r\n");
}

/// A `POST` head as [`encode_head`] writes it, from its parts: the target is `prefix`
/// followed by `path`, then `headers` in order, then the body's length.
pub(crate) fn encode_post(
    prefix: &str,
    path: &[&str],
    headers: &[(&str, &[u8])],
    body_len: usize,
    out: &mut BytesMut,
) {
    out.reserve(96 + prefix.len() + path.iter().map(|p| p.len()).sum::<usize>());
    out.put_slice(b"POST ");
    out.put_slice(prefix.as_bytes());
    for part in path {
        out.put_slice(part.as_bytes());
    }
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
    put_content_length(body_len, out);
    out.put_slice(b"\r\n");
}

/// `content-length: {len}\r\n`, the number written without the formatting machinery
/// (this line goes out with every result).
fn put_content_length(len: usize, out: &mut BytesMut) {
    out.put_slice(b"content-length: ");
    out.put_slice(itoa::Buffer::new().format(len).as_bytes());
    out.put_slice(b"\r\n");
}

/// The line that opens a chunk of `len` bytes (RFC 9112 §7.1); `len` must not be 0, which
/// would end the body.
pub(crate) fn chunk_size_line(len: usize) -> Bytes {
    Bytes::from(format!("{len:x}\r\n"))
}

/// The end of a chunked body: the last (empty) chunk, the trailer fields, the empty line.
pub(crate) fn last_chunk(trailers: &[(&str, &http::HeaderValue)], out: &mut BytesMut) {
    out.put_slice(b"0\r\n");
    for (name, value) in trailers {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
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

/// A reply's status line and how its body is framed; the headers stay in `raw`.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) framing: Framing,
    /// The server keeps the connection open after this reply.
    pub(crate) keep_alive: bool,
    /// The head as received, with where its header fields lie.
    pub(crate) raw: RawHead,
}

/// The most header fields whose place a [`RawHead`] keeps; a head with more (Lambda's have
/// under ten) is scanned again when its headers are read.
const INDEXED: usize = 8;

/// A whole head as received (status line, header lines, empty line), and where in it
/// `httparse` found each header field, so reading the headers later (the invocation's
/// request id, deadline, trace…) does not parse the head a second time.
#[derive(Debug, Clone)]
pub(crate) struct RawHead {
    pub(crate) bytes: Bytes,
    /// How many of `spans` are filled; `None` when the head had more than [`INDEXED`].
    indexed: Option<u8>,
    /// Per field: name start, name end, value start, value end (the value without
    /// surrounding whitespace), as offsets into `bytes` (a head is at most [`MAX_HEAD`]).
    spans: [[u16; 4]; INDEXED],
}

impl RawHead {
    /// The header fields in order: the name as sent and the value without surrounding
    /// whitespace.
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let bytes = &self.bytes[..];
        let indexed = self
            .indexed
            .map_or(&[][..], |n| &self.spans[..usize::from(n)]);
        let spans = indexed.iter().map(move |&[a, b, c, d]| {
            let at = |from: u16, to: u16| &bytes[usize::from(from)..usize::from(to)];
            (at(a, b), at(c, d))
        });
        let scanned = self.indexed.is_none().then(|| scan_fields(bytes));
        spans.chain(scanned.into_iter().flatten())
    }
}

/// The position of the first `byte` in `haystack`, looking at eight bytes per step (heads
/// are scanned for line ends on every reply, so this is on the hot path).
fn find(haystack: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = ONES * u64::from(byte);
    let mut chunks = haystack.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8])) ^ pattern;
        // A byte of `word` is zero exactly where `chunk` holds `byte`.
        if word.wrapping_sub(ONES) & !word & HIGHS != 0 {
            return chunk.iter().position(|&b| b == byte).map(|i| at + i);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == byte)
        .map(|i| at + i)
}

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
        let nl = find(&self.buf[start..], b'\n')?;
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

/// The length of the lines at the front of `buf` through the first empty one (a chunked
/// body's trailers), once they are all there.
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

/// The header lines of a whole head, found by scanning it, in order: the name as sent
/// and the value without surrounding whitespace. What [`RawHead::fields`] gives when the
/// head had too many fields to index.
pub(crate) fn scan_fields(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    Lines { buf: raw, at: 0 }
        .skip(1)
        .take_while(|(start, end, _)| start != end)
        .filter_map(move |(start, end, _)| {
            let line = &raw[start..end];
            let colon = find(line, b':')?;
            Some((&line[..colon], trim(&line[colon + 1..])))
        })
}

/// The most header fields a reply head may have (Lambda's have under ten).
const MAX_FIELDS: usize = 64;

/// Takes the head at the front of `buf` once it is complete: the status, and the headers
/// that decide how the body ends and whether the connection stays open. The head is
/// parsed by `httparse` (fuzzed, SIMD-accelerated); the other headers are read only when
/// asked for, through [`fields`].
pub(crate) fn take_head(buf: &mut BytesMut) -> Result<Option<Head>, FramingError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut reply = httparse::Response::new(&mut storage);
    let len = match reply.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return too_long(buf),
        Err(e) => return malformed(format!("the head: {e}")),
    };
    let status = reply
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| FramingError("status code".into()))?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut encoded = false;
    let mut close = reply.version == Some(0);
    // Every field lies in the first `len` bytes of `buf`: when that fits a u16, so do the
    // offsets of the fields.
    let indexed = (reply.headers.len() <= INDEXED && u16::try_from(len).is_ok())
        .then_some(reply.headers.len() as u8);
    let mut spans = [[0u16; 4]; INDEXED];
    let offset = |part: &[u8]| (part.as_ptr() as usize - buf.as_ptr() as usize) as u16;
    for (i, field) in reply.headers.iter().enumerate() {
        // httparse gives each value without the whitespace around it.
        let (name, value) = (field.name.as_bytes(), field.value);
        if let (Some(_), Some(span)) = (indexed, spans.get_mut(i)) {
            let (n, v) = (offset(name), offset(value));
            *span = [n, n + name.len() as u16, v, v + value.len() as u16];
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| FramingError("Content-Length".into()))?;
            if length.is_some_and(|l| l != n) {
                return malformed("two different Content-Length values");
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            encoded = true;
            // Only the last coding decides how the body ends.
            chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
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
    // A head split off shares the buffer's memory; while it lives, a buffer that must grow
    // for the rest of a large body grows into a fresh allocation (and its page faults), on
    // every such reply. So a head ahead of a body still to come is copied out instead (a
    // few hundred bytes); one whose body is all here is split off, at no cost.
    let body_to_come = matches!(framing, Framing::Length(n) if buf.len() - len < n);
    let bytes = if body_to_come {
        let head = Bytes::copy_from_slice(&buf[..len]);
        buf.advance(len);
        head
    } else {
        buf.split_to(len).freeze()
    };
    Ok(Some(Head {
        status,
        keep_alive: !close && framing != Framing::UntilClose,
        framing,
        raw: RawHead {
            bytes,
            indexed,
            spans,
        },
    }))
}

/// Moves every complete chunk at the front of `buf` into `body`. `Ok(true)` once the
/// last chunk and any trailers are consumed; `Ok(false)` when more bytes are needed.
pub(crate) fn take_chunks(buf: &mut BytesMut, body: &mut BytesMut) -> Result<bool, FramingError> {
    loop {
        let Some(nl) = find(buf, b'\n') else {
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
    use http::HeaderValue;

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
    fn find_matches_a_plain_search() {
        let text: Vec<u8> = (0..200u32)
            .map(|i| b"ab:\n\x80\xff"[(i * 7 % 6) as usize])
            .collect();
        for start in 0..text.len() {
            for byte in [b'\n', b':', 0x80, 0xff, b'z'] {
                let hay = &text[start..];
                assert_eq!(
                    find(hay, byte),
                    hay.iter().position(|&b| b == byte),
                    "{start} {byte}"
                );
            }
        }
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
        let fields: Vec<_> = h.raw.fields().collect();
        assert_eq!(fields.len(), 3);
        assert_eq!(
            fields[1],
            (&b"Lambda-Runtime-Aws-Request-Id"[..], &b"8476a536"[..])
        );

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
    fn a_head_with_more_fields_than_are_indexed_still_reads_them_all_in_order() {
        let lines: String = (0..INDEXED + 4)
            .map(|i| format!("X-Field-{i}: {i}\r\n"))
            .collect();
        let h = head(&format!(
            "HTTP/1.1 200 OK\r\n{lines}Content-Length: 0\r\n\r\n"
        ))
        .unwrap();
        let fields: Vec<_> = h.raw.fields().collect();
        assert_eq!(fields.len(), INDEXED + 5);
        assert_eq!(fields[INDEXED + 3], (&b"X-Field-11"[..], &b"11"[..]));
        assert_eq!(fields[INDEXED + 4], (&b"Content-Length"[..], &b"0"[..]));
    }

    #[test]
    fn broken_heads_are_refused_with_the_reason() {
        let cases = [
            ("HTTP/2 200 OK\r\n\r\n", "version"),
            ("SSH-2.0-OpenSSH\r\n\r\n", "version"),
            ("HTTP/1.1 2000 OK\r\n\r\n", "status"),
            ("HTTP/1.1 abc OK\r\n\r\n", "status"),
            ("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header name"),
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
