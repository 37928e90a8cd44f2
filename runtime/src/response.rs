//! What a handler returns, and how it goes on the wire (protocol.md §1.2, §1.3).
//!
//! A handler's output implements [`IntoResponse`], in the spirit of axum's trait of the
//! same name:
//! - anything `Serialize` is sent as JSON (`application/json`), as before;
//! - [`Raw`] is bytes or text with a content type of your choosing;
//! - [`Streaming`] is a streamed response: chunks go out as they are produced, and an
//!   error part-way ends the stream with Lambda's error trailers;
//! - [`HttpIntegration`] is a Function URL (or API Gateway) response: status, headers and
//!   cookies in a prelude, then a buffered or streamed body.
//!
//! ```
//! use ironlambda_runtime::{Context, Error, Raw, Streaming};
//!
//! async fn page(_: serde_json::Value, _: Context) -> Result<Raw, Error> {
//!     Ok(Raw::new("text/html; charset=utf-8", "<h1>Hello</h1>"))
//! }
//!
//! async fn tokens(_: serde_json::Value, _: Context) -> Result<Streaming, Error> {
//!     let (sender, response) = Streaming::channel();
//!     tokio::spawn(async move {
//!         for word in ["Hello", ", ", "world"] {
//!             if sender.send(word).await.is_err() {
//!                 return; // the invocation ended: nobody reads any more
//!             }
//!         }
//!     });
//!     Ok(response)
//! }
//! ```

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use futures_core::Stream;
use serde::Serialize;
use tokio::sync::mpsc;

use ironlambda_api_client::Error;
use ironlambda_api_client::http_integration::{self, PRELUDE_SEPARATOR, ResponseHead};

/// The content type of JSON responses.
pub(crate) const JSON: &str = "application/json";
/// The content type of a stream that did not name one (what the Node runtime uses).
const OCTET_STREAM: &str = "application/octet-stream";
/// The content type that tells Lambda a prelude precedes the body (protocol.md §1.3).
pub const HTTP_INTEGRATION_CONTENT_TYPE: &str = http_integration::CONTENT_TYPE;

/// How many chunks a [`Streaming::channel`] holds before [`StreamSender::send`] waits.
pub const CHANNEL_CHUNKS: usize = 4;

/// A stream of chunks as the runtime sends it.
pub(crate) type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// A response ready to send: buffered bytes or a stream, with its content type.
pub struct Response {
    pub(crate) content_type: Cow<'static, str>,
    pub(crate) body: ResponseBody,
}

pub(crate) enum ResponseBody {
    Buffered(Bytes),
    /// Streamed; `prelude` goes out first (HTTP integration).
    Streaming {
        prelude: Option<Bytes>,
        chunks: ChunkStream,
    },
}

impl Response {
    /// A buffered response.
    pub fn buffered(content_type: impl Into<Cow<'static, str>>, body: impl Into<Bytes>) -> Self {
        Response {
            content_type: content_type.into(),
            body: ResponseBody::Buffered(body.into()),
        }
    }

    /// The content type Lambda is told.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The body, when it is buffered; `None` for a stream (whose chunks are produced only
    /// as the runtime sends them).
    pub fn buffered_body(&self) -> Option<&Bytes> {
        match &self.body {
            ResponseBody::Buffered(b) => Some(b),
            ResponseBody::Streaming { .. } => None,
        }
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = match &self.body {
            ResponseBody::Buffered(b) => format!("{} bytes", b.len()),
            ResponseBody::Streaming { .. } => "a stream".to_owned(),
        };
        f.debug_struct("Response")
            .field("content_type", &self.content_type)
            .field("body", &body)
            .finish()
    }
}

/// Where [`IntoResponse`] writes a serialized body: memory the runtime reuses from one
/// invocation to the next (when it can, the very memory the event was read into), so a
/// large JSON response costs neither a fresh allocation (and its page faults) nor a second
/// buffer beside the event's.
///
/// The runtime brings its own; make one with [`ResponseBuffer::new`] to test an
/// [`IntoResponse`] of yours:
///
/// ```
/// use ironlambda_runtime::{Error, IntoResponse, Response, ResponseBuffer};
///
/// struct Csv(Vec<(String, u32)>);
///
/// impl IntoResponse for Csv {
///     fn into_response(self, _: &mut ResponseBuffer) -> Result<Response, Error> {
///         let rows: String = self.0.iter().map(|(k, v)| format!("{k},{v}\n")).collect();
///         Ok(Response::buffered("text/csv", rows))
///     }
/// }
///
/// let response = Csv(vec![("a".into(), 1)])
///     .into_response(&mut ResponseBuffer::new())
///     .unwrap();
/// assert_eq!(response.content_type(), "text/csv");
/// assert_eq!(response.buffered_body().unwrap().as_ref(), b"a,1\n");
/// ```
#[derive(Debug, Default)]
pub struct ResponseBuffer {
    buf: BytesMut,
    size_hint: usize,
    /// Where `sonic-rs` writes: memory of its own, kept from one response to the next
    /// (see [`ResponseBuffer::json`]).
    #[cfg(feature = "sonic")]
    sonic: Vec<u8>,
}

impl ResponseBuffer {
    /// An empty buffer, for tests: the runtime hands [`IntoResponse`] its own.
    pub fn new() -> Self {
        Self::default()
    }

    /// The memory bodies are written into; the loop lends it the connection's read buffer
    /// while a response is built.
    pub(crate) fn memory(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Room for `n` bytes is made before the next body is written (responses are often
    /// about as large as their events; capacity never written costs nothing).
    pub(crate) fn reserve_for(&mut self, n: usize) {
        self.size_hint = n;
    }

    /// Serializes `value` as JSON into the buffer and hands the bytes out.
    ///
    /// With the `sonic` feature the bytes are written by `sonic-rs`; any value it cannot
    /// write as serde_json would is written by serde_json, and so is every error.
    pub fn json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<Bytes, serde_json::Error> {
        // sonic-rs reserves room for the worst case before it writes a string (6 bytes for
        // each byte of it). Made in `buf`, the memory the event was read into, that room
        // would leave the next event to be read into memory untouched since the invocation
        // before, long gone from the cache: reading a 1 MB event then cost the kernel about
        // 3× as much. So sonic-rs writes into memory of its own, and the answer is copied
        // to where the event was, which is where the next one will be read.
        #[cfg(feature = "sonic")]
        if sonic_wrote(&mut self.sonic, value) {
            self.buf.clear();
            self.buf.extend_from_slice(&self.sonic);
            return Ok(self.buf.split().freeze());
        }
        self.buf.clear();
        self.buf.reserve(self.size_hint.max(256));
        serde_json::to_writer((&mut self.buf).writer(), value)?;
        Ok(self.buf.split().freeze())
    }
}

/// What serde_json's own types (`RawValue`, and numbers under its `arbitrary_precision`
/// feature) look like to another serializer: a struct with a field of this name, which
/// serde_json alone knows to write as the text it holds.
#[cfg(feature = "sonic")]
const SERDE_JSON_PRIVATE: &[u8] = b"\"$serde_json::private::";

/// Writes `value` with `sonic-rs` into `buf`, whose SIMD string escaping makes a large
/// response several times cheaper to write than serde_json's byte-at-a-time loop.
/// `false` when serde_json must write it instead: sonic-rs failed (serde_json then writes
/// the error, in the words users know), or the value holds one of serde_json's own types,
/// which sonic-rs would write as a struct. A response that merely contains that field name
/// as text goes through serde_json too: slower, never wrong.
#[cfg(feature = "sonic")]
fn sonic_wrote<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) -> bool {
    buf.clear();
    sonic_rs::to_writer(&mut *buf, value).is_ok()
        && memchr::memmem::find(buf, SERDE_JSON_PRIVATE).is_none()
}

/// A handler's output: how it becomes the bytes Lambda receives.
///
/// Implemented for every `Serialize` type (sent as JSON), [`Raw`], [`Streaming`],
/// [`HttpIntegration`] and [`Response`]. Implement it for your own type to choose its
/// content type and encoding.
pub trait IntoResponse: Send {
    /// Builds the response; `buf` is where a serialized body should be written.
    /// An `Err` fails the invocation (the runtime reports `Runtime.SerializationError`).
    fn into_response(self, buf: &mut ResponseBuffer) -> Result<Response, Error>;
}

impl<T: Serialize + Send> IntoResponse for T {
    fn into_response(self, buf: &mut ResponseBuffer) -> Result<Response, Error> {
        let body = buf.json(&self).map_err(|e| {
            Error::new(
                crate::SERIALIZATION_ERROR_TYPE,
                format!("failed to serialize the response: {e}"),
            )
        })?;
        Ok(Response::buffered(JSON, body))
    }
}

impl IntoResponse for Response {
    fn into_response(self, _: &mut ResponseBuffer) -> Result<Response, Error> {
        Ok(self)
    }
}

/// Bytes or text sent as they are, with a content type.
///
/// ```
/// use ironlambda_runtime::Raw;
/// let csv = Raw::new("text/csv", "id,name\n1,Ada\n");
/// let png = Raw::binary(vec![0x89, b'P', b'N', b'G']);
/// let hello = Raw::text("Hello");
/// # let _ = (csv, png, hello);
/// ```
#[derive(Debug, Clone)]
pub struct Raw {
    content_type: Cow<'static, str>,
    body: Bytes,
}

impl Raw {
    /// `body` with `content_type`.
    pub fn new(content_type: impl Into<Cow<'static, str>>, body: impl Into<Bytes>) -> Self {
        Raw {
            content_type: content_type.into(),
            body: body.into(),
        }
    }

    /// Text as `text/plain; charset=utf-8`.
    pub fn text(text: impl Into<String>) -> Self {
        Raw::new("text/plain; charset=utf-8", text.into())
    }

    /// Bytes as `application/octet-stream`.
    pub fn binary(body: impl Into<Bytes>) -> Self {
        Raw::new(OCTET_STREAM, body)
    }
}

impl IntoResponse for Raw {
    fn into_response(self, _: &mut ResponseBuffer) -> Result<Response, Error> {
        Ok(Response::buffered(self.content_type, self.body))
    }
}

/// A streamed response (protocol.md §1.3): each chunk goes to the caller as soon as it is
/// produced, and the function never holds the whole response. The runtime takes the next
/// chunk only once the previous one is on its way, so a slow reader slows the producer
/// instead of filling memory.
///
/// Make one from any `Stream` of `Result<chunk, error>` with [`Streaming::new`], or get a
/// [`StreamSender`] to push chunks from a task with [`Streaming::channel`]. An error (or a
/// panic) part-way ends the stream with Lambda's error trailers: the caller gets the bytes
/// already sent, then the error.
///
/// ```
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
/// use ironlambda_runtime::{Error, Streaming};
///
/// /// Counts down to zero, one line per chunk.
/// struct Countdown(u32);
///
/// impl futures_core::Stream for Countdown {
///     type Item = Result<String, Error>;
///     fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
///         let n = self.0;
///         self.0 = n.saturating_sub(1);
///         Poll::Ready((n > 0).then(|| Ok(format!("{n}\n"))))
///     }
/// }
///
/// let response = Streaming::new(Countdown(3)).content_type("text/plain");
/// # let _ = response;
/// ```
pub struct Streaming {
    content_type: Cow<'static, str>,
    chunks: ChunkStream,
}

impl Streaming {
    /// Streams what `stream` yields, as `application/octet-stream` unless
    /// [`content_type`](Self::content_type) says otherwise.
    pub fn new<S, B, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<B, E>> + Send + 'static,
        B: Into<Bytes>,
        E: Into<Error>,
    {
        Streaming {
            content_type: Cow::Borrowed(OCTET_STREAM),
            chunks: Box::pin(Chunks(Box::pin(stream))),
        }
    }

    /// A sender to push chunks with, and the response that streams them. The channel holds
    /// [`CHANNEL_CHUNKS`] chunks: [`StreamSender::send`] waits while that many are unsent,
    /// so the producer may run a little ahead of the socket (fewer task switches), and no
    /// further.
    pub fn channel() -> (StreamSender, Streaming) {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let stream = Streaming {
            content_type: Cow::Borrowed(OCTET_STREAM),
            chunks: Box::pin(Received(rx)),
        };
        (StreamSender(tx), stream)
    }

    /// Sets the content type the caller sees.
    pub fn content_type(mut self, content_type: impl Into<Cow<'static, str>>) -> Self {
        self.content_type = content_type.into();
        self
    }
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// A `Streaming` response is itself a stream of its chunks, so a test can read back what
/// a handler streams.
impl Stream for Streaming {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.as_mut().poll_next(cx)
    }
}

impl IntoResponse for Streaming {
    fn into_response(self, _: &mut ResponseBuffer) -> Result<Response, Error> {
        Ok(Response {
            content_type: self.content_type,
            body: ResponseBody::Streaming {
                prelude: None,
                chunks: self.chunks,
            },
        })
    }
}

/// Adapts a user's stream to the runtime's chunk type.
struct Chunks<S>(Pin<Box<S>>);

impl<S, B, E> Stream for Chunks<S>
where
    S: Stream<Item = Result<B, E>>,
    B: Into<Bytes>,
    E: Into<Error>,
{
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|item| item.map(|r| r.map(Into::into).map_err(Into::into)))
    }
}

/// The receiving end of [`Streaming::channel`].
struct Received(mpsc::Receiver<Result<Bytes, Error>>);

impl Stream for Received {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Pushes chunks into a [`Streaming`] response from [`Streaming::channel`]. Dropping it
/// ends the response; [`fail`](Self::fail) ends it with an error instead.
#[derive(Debug, Clone)]
pub struct StreamSender(mpsc::Sender<Result<Bytes, Error>>);

/// The response a [`StreamSender`] fed has ended (the invocation is over, or the
/// connection to Lambda failed): stop producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamClosed;

impl std::fmt::Display for StreamClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the streamed response has ended")
    }
}

impl std::error::Error for StreamClosed {}

impl StreamSender {
    /// Sends one chunk, waiting while the previous one has not gone out yet.
    pub async fn send(&self, chunk: impl Into<Bytes>) -> Result<(), StreamClosed> {
        self.0
            .send(Ok(chunk.into()))
            .await
            .map_err(|_| StreamClosed)
    }

    /// Ends the response with `error`: the caller gets the chunks already sent, then the
    /// error (Lambda's error trailers).
    pub async fn fail(self, error: impl Into<Error>) -> Result<(), StreamClosed> {
        self.0
            .send(Err(error.into()))
            .await
            .map_err(|_| StreamClosed)
    }
}

/// A response for a Function URL or an API Gateway streaming integration: status, headers
/// and cookies go in a JSON prelude, then 8 NUL bytes, then the body, under the content
/// type `application/vnd.awslambda.http-integration-response` (protocol.md §1.3).
///
/// ```
/// use ironlambda_runtime::{HttpIntegration, Streaming};
/// let (sender, body) = Streaming::channel();
/// let response = HttpIntegration::new(201)
///     .header("content-type", "text/plain")
///     .cookie("session=abc; Secure; HttpOnly")
///     .stream(body);
/// # let _ = (sender, response);
/// ```
#[derive(Debug)]
pub struct HttpIntegration {
    prelude: ResponseHead,
    body: Option<Streaming>,
    buffered: Bytes,
}

impl HttpIntegration {
    /// A response with this HTTP status and, until set, an empty body.
    pub fn new(status: u16) -> Self {
        HttpIntegration {
            prelude: ResponseHead::new(status),
            body: None,
            buffered: Bytes::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.prelude.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a `Set-Cookie` value (name=value plus attributes).
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.prelude.cookies.push(cookie.into());
        self
    }

    /// The body, sent whole after the prelude.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.buffered = body.into();
        self.body = None;
        self
    }

    /// The body, streamed after the prelude.
    pub fn stream(mut self, body: Streaming) -> Self {
        self.body = Some(body);
        self
    }
}

impl IntoResponse for HttpIntegration {
    fn into_response(self, buf: &mut ResponseBuffer) -> Result<Response, Error> {
        let json = buf.json(&self.prelude).map_err(|e| {
            Error::new(
                crate::SERIALIZATION_ERROR_TYPE,
                format!("failed to serialize the HTTP prelude: {e}"),
            )
        })?;
        // serde_json escapes control characters, so the prelude never holds a NUL byte.
        let mut prelude = BytesMut::with_capacity(json.len() + PRELUDE_SEPARATOR.len());
        prelude.extend_from_slice(&json);
        prelude.extend_from_slice(&PRELUDE_SEPARATOR);
        let chunks = match self.body {
            Some(streaming) => streaming.chunks,
            None => Box::pin(Once(Some(self.buffered))),
        };
        Ok(Response {
            content_type: Cow::Borrowed(HTTP_INTEGRATION_CONTENT_TYPE),
            body: ResponseBody::Streaming {
                prelude: Some(prelude.freeze()),
                chunks,
            },
        })
    }
}

/// A stream of one chunk.
struct Once(Option<Bytes>);

impl Stream for Once {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(mut chunks: ChunkStream) -> Vec<Result<Bytes, String>> {
        let waker = std::task::Waker::noop();
        let mut cx = TaskContext::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(Some(item)) = chunks.as_mut().poll_next(&mut cx) {
            out.push(item.map_err(|e| e.error_type().to_owned()));
        }
        out
    }

    #[test]
    fn a_stream_shows_its_content_type_but_no_buffered_body() {
        let (_sender, streaming) = Streaming::channel();
        let r = streaming
            .content_type("text/event-stream")
            .into_response(&mut ResponseBuffer::new())
            .unwrap();
        assert_eq!(r.content_type(), "text/event-stream");
        assert!(r.buffered_body().is_none());
    }

    #[test]
    fn serializable_outputs_are_json() {
        let mut buf = ResponseBuffer::new();
        let r = serde_json::json!({"a": 1}).into_response(&mut buf).unwrap();
        assert_eq!(r.content_type, "application/json");
        assert!(matches!(r.body, ResponseBody::Buffered(b) if b == r#"{"a":1}"#));
        let r = "text".to_owned().into_response(&mut buf).unwrap();
        assert!(matches!(r.body, ResponseBody::Buffered(b) if b == r#""text""#));
    }

    #[test]
    fn raw_bodies_keep_their_bytes_and_content_type() {
        let mut buf = ResponseBuffer::new();
        let r = Raw::new("text/csv", "a,b\n")
            .into_response(&mut buf)
            .unwrap();
        assert_eq!(r.content_type, "text/csv");
        assert!(matches!(r.body, ResponseBody::Buffered(b) if b == "a,b\n"));
        let r = Raw::binary(vec![0u8, 255]).into_response(&mut buf).unwrap();
        assert_eq!(r.content_type, "application/octet-stream");
    }

    #[test]
    fn an_http_integration_response_starts_with_its_prelude_and_eight_nuls() {
        let mut buf = ResponseBuffer::new();
        let r = HttpIntegration::new(201)
            .header("Content-Type", "text/plain")
            .header("x-a", "1")
            .header("X-A", "2")
            .cookie("s=1; Secure")
            .body("hi")
            .into_response(&mut buf)
            .unwrap();
        assert_eq!(r.content_type, HTTP_INTEGRATION_CONTENT_TYPE);
        let ResponseBody::Streaming { prelude, chunks } = r.body else {
            panic!("an HTTP integration response is streamed");
        };
        let prelude = prelude.unwrap();
        let (json, nuls) = prelude.split_at(prelude.len() - 8);
        assert_eq!(nuls, [0u8; 8]);
        let json: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "statusCode": 201,
                "headers": {"Content-Type": "text/plain", "x-a": "1, 2"},
                "cookies": ["s=1; Secure"],
            })
        );
        assert_eq!(drain(chunks), vec![Ok(Bytes::from("hi"))]);
    }

    #[tokio::test]
    async fn a_sender_feeds_the_stream_and_fail_ends_it_with_the_error() {
        let (tx, streaming) = Streaming::channel();
        let producer = tokio::spawn(async move {
            tx.send("a").await.unwrap();
            tx.send(Bytes::from_static(b"b")).await.unwrap();
            tx.fail(Error::new("StreamInterrupted", "stopped"))
                .await
                .unwrap();
        });
        let mut chunks = streaming.chunks;
        let mut got = Vec::new();
        while let Some(item) = std::future::poll_fn(|cx| chunks.as_mut().poll_next(cx)).await {
            got.push(item.map_err(|e| e.error_type().to_owned()));
        }
        producer.await.unwrap();
        assert_eq!(
            got,
            vec![
                Ok(Bytes::from("a")),
                Ok(Bytes::from("b")),
                Err("StreamInterrupted".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn sending_after_the_response_is_dropped_says_closed() {
        let (tx, streaming) = Streaming::channel();
        drop(streaming);
        assert_eq!(tx.send("late").await, Err(StreamClosed));
    }
}

/// The `sonic` feature writes what serde_json writes (`make test` runs these with it on).
#[cfg(all(test, feature = "sonic"))]
mod sonic_tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn written(value: &impl Serialize) -> Result<Bytes, serde_json::Error> {
        ResponseBuffer::new().json(value)
    }

    fn read_back(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).expect("the response is JSON")
    }

    #[test]
    fn a_response_written_by_sonic_reads_back_as_the_value_serde_json_writes() {
        #[derive(Serialize)]
        enum Kind {
            Tagged { n: u8 },
        }
        #[derive(Serialize)]
        struct Answer {
            text: &'static str,
            floats: [f64; 4],
            big: u64,
            negative: i64,
            missing: Option<u8>,
            kind: Kind,
            keyed_by_number: std::collections::BTreeMap<u32, bool>,
        }
        let answer = Answer {
            text: "quote \" backslash \\ newline \n control \u{1} del \u{7f} é 💡 \u{2028}",
            floats: [0.1, 1e300, -0.0, f64::NAN],
            big: u64::MAX,
            negative: i64::MIN,
            missing: None,
            kind: Kind::Tagged { n: 7 },
            keyed_by_number: [(1, true), (20, false)].into(),
        };
        let ours = written(&answer).unwrap();
        assert_eq!(
            read_back(&ours),
            read_back(&serde_json::to_vec(&answer).unwrap())
        );
    }

    #[test]
    fn a_buffer_used_again_writes_each_answer_whole_and_alone() {
        let mut buf = ResponseBuffer::new();
        let long = "x".repeat(100_000);
        let first = buf.json(&json!({ "text": long })).unwrap();
        let second = buf.json(&json!({ "n": 1 })).unwrap();
        assert_eq!(&second[..], br#"{"n":1}"#);
        assert_eq!(
            read_back(&first)["text"].as_str().map(str::len),
            Some(100_000)
        );
    }

    #[test]
    fn a_raw_value_in_the_response_is_written_as_its_text() {
        #[derive(Serialize)]
        struct Passing {
            raw: Box<serde_json::value::RawValue>,
        }
        let raw = serde_json::value::RawValue::from_string(r#"{"kept": [1, 2]}"#.into()).unwrap();
        let ours = written(&Passing { raw }).unwrap();
        assert_eq!(&ours[..], br#"{"raw":{"kept": [1, 2]}}"#);
    }

    #[test]
    fn a_response_that_cannot_be_json_fails_with_serde_jsons_message() {
        let keyed_by_pair: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let e = written(&keyed_by_pair).unwrap_err();
        assert_eq!(
            e.to_string(),
            serde_json::to_vec(&keyed_by_pair).unwrap_err().to_string()
        );
    }

    proptest! {
        #[test]
        fn any_string_reads_back_unchanged(text in any::<String>(), key in any::<String>()) {
            let value = json!({ key: [text.clone(), json!({ "nested": text })] });
            let ours = written(&value).unwrap();
            prop_assert_eq!(read_back(&ours), value);
        }
    }
}
