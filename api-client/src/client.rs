//! One keep-alive HTTP/1.1 connection to the Lambda APIs.
//!
//! A runtime loop talks to a single local endpoint, so a pool would only add cost: the
//! client owns one connection, opens it on first use and reopens it when the server has
//! closed it. Requests can be queued and written together, their replies read in order
//! (HTTP/1.1 pipelining): the runtime writes a finished invocation's `/response` and the
//! next `/next` in one write, which saves a round trip per invocation. Lambda's Runtime API
//! server (Go's `net/http`) answers pipelined requests one after the other, as RFC 9112
//! §9.3.2 requires. That section asks a client to pipeline behind a `POST` only if it can
//! recover when the connection fails part-way: the runtime queues only `/next` behind a
//! `POST`, and a `/next` lost with its connection is polled again, while the `POST` itself
//! is never re-sent. No timeout
//! is set: the `/next` long-poll may legitimately block for as long as the sandbox is
//! frozen (protocol.md §0).

use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderValue, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::endpoint::Endpoint;
use crate::error::{ApiError, TransportError};
use crate::http1::{self, Framing, Head};
use crate::runtime_api::Body;

/// How many times a long-poll (`/next`, `/event/next`) is tried before giving up.
pub const POLL_ATTEMPTS: u32 = 6;
/// The first pause between long-poll attempts; it doubles (50 ms … 800 ms, ~1.5 s in all).
pub const POLL_BACKOFF: Duration = Duration::from_millis(50);

/// Bodies up to this size are copied next to their head so a request is one buffer;
/// larger ones are written from their own memory (a vectored write, no copy).
const INLINE_BODY: usize = 16 * 1024;
/// How much the read buffer grows by when it runs low.
const READ_CHUNK: usize = 16 * 1024;
/// Below this much free room the read buffer is grown before reading.
const MIN_SPARE: usize = 1024;
/// A connection idle for longer than this is checked with the kernel itself before reuse
/// (servers close idle connections after seconds, not milliseconds).
const QUIET: Duration = Duration::from_millis(100);
/// How long a failed write waits for an answer the server may have sent before closing.
const EARLY_REPLY_WAIT: Duration = Duration::from_secs(1);

/// A successful (2xx) answer, with its body read in full.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The status code.
    pub status: StatusCode,
    /// The whole body.
    pub body: Bytes,
    /// The head as received; headers are read from it only when asked for.
    head: http1::RawHead,
}

impl ApiResponse {
    /// The reply's headers in the order they came: each name as sent (compare names
    /// case-insensitively) and its value without surrounding whitespace. A header whose
    /// name or value is not UTF-8 is skipped.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.raw_headers().filter_map(|(name, value)| {
            Some((
                std::str::from_utf8(name).ok()?,
                std::str::from_utf8(value).ok()?,
            ))
        })
    }

    /// The headers as bytes, for readers that look at a few names only.
    pub(crate) fn raw_headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.head.fields()
    }

    /// The body, letting go of the head: the memory they were read into is then the
    /// connection's alone again once the body goes too (see [`Client::lend_read_buffer`]).
    pub fn into_body(self) -> Bytes {
        self.body
    }

    /// The value of the first header called `name` (in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }
}

fn transport(
    context: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ApiError {
    ApiError::Transport(TransportError {
        context,
        source: source.into(),
    })
}

/// A reply as the caller gets it: success, or the typed error its status means.
fn answer(head: Head, body: Bytes) -> Result<ApiResponse, ApiError> {
    if head.status.is_success() {
        Ok(ApiResponse {
            status: head.status,
            body,
            head: head.raw,
        })
    } else {
        Err(ApiError::from_status(head.status, &body))
    }
}

fn ended_early() -> ApiError {
    transport(
        "reading the Lambda API reply",
        "the server closed the connection before the whole reply arrived",
    )
}

/// A request framed for the wire once, to be queued again and again without being built
/// and encoded each time (the runtime's `/next`).
#[derive(Debug, Clone)]
pub struct EncodedRequest(Bytes);

impl EncodedRequest {
    /// Frames `req`, body included.
    pub fn new(req: &Request<Body>) -> Self {
        let mut out = BytesMut::new();
        http1::encode_head(req, &mut out);
        out.extend_from_slice(req.body());
        EncodedRequest(out.freeze())
    }
}

/// One open connection and the bytes read from it that no reply has taken yet.
struct Connection {
    stream: TcpStream,
    buf: BytesMut,
    /// When the last reply was read: the connection has been idle since.
    last_reply: Instant,
}

impl Connection {
    async fn open(authority: &str) -> Result<Self, ApiError> {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| transport("connecting to the Lambda API", e))?;
        // Requests are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream,
            buf: BytesMut::new(),
            last_reply: Instant::now(),
        })
    }

    /// Whether an idle connection can no longer carry a request: the server closed it, or
    /// sent bytes nobody asked for. Checked without blocking before an idle connection is
    /// reused, so a request is not written into a connection known to be dead. What tokio
    /// has already seen costs nothing to check; after [`QUIET`] the kernel is asked too.
    fn gone_stale(&self) -> bool {
        let unusable = |peeked: io::Result<usize>| match peeked {
            Ok(_) => true,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        let mut probe = [0u8; 1];
        if !self.buf.is_empty() || unusable(self.stream.try_read(&mut probe)) {
            return true;
        }
        if self.last_reply.elapsed() < QUIET {
            return false;
        }
        // A duplicate of the (non-blocking) descriptor peeks past tokio's readiness cache.
        match self.stream.as_fd().try_clone_to_owned() {
            Ok(fd) => unusable(std::net::TcpStream::from(fd).peek(&mut probe)),
            Err(_) => true,
        }
    }

    /// Writes every segment, in order.
    async fn write(&mut self, segments: &mut [Bytes]) -> io::Result<()> {
        let mut first = 0;
        while first < segments.len() {
            let mut n = if first + 1 == segments.len() {
                self.stream.write(&segments[first]).await?
            } else {
                let slices: Vec<IoSlice<'_>> =
                    segments[first..].iter().map(|s| IoSlice::new(s)).collect();
                self.stream.write_vectored(&slices).await?
            };
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            while n > 0 {
                let segment = &mut segments[first];
                if n >= segment.len() {
                    n -= segment.len();
                    first += 1;
                } else {
                    segment.advance(n);
                    n = 0;
                }
            }
        }
        Ok(())
    }

    /// Reads more bytes, making room for at least `want` first; `false` at the end of the
    /// connection.
    async fn fill(&mut self, want: usize) -> Result<bool, ApiError> {
        if self.buf.capacity() - self.buf.len() < want.max(MIN_SPARE) {
            self.buf.reserve(want.max(READ_CHUNK));
        }
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| transport("reading the Lambda API reply", e))?;
        Ok(n > 0)
    }

    /// Reads the next whole reply.
    async fn read_reply(&mut self) -> Result<(Head, Bytes), ApiError> {
        let malformed = |e| transport("reading the Lambda API reply", e);
        let head = loop {
            match http1::take_head(&mut self.buf).map_err(malformed)? {
                // An interim reply (100 Continue) is followed by the real one.
                Some(head) if !head.status.is_informational() => break head,
                Some(_) => {}
                None => {
                    if !self.fill(0).await? {
                        return Err(ended_early());
                    }
                }
            }
        };
        let body = match head.framing {
            Framing::Length(n) => {
                while self.buf.len() < n {
                    if !self.fill(n - self.buf.len()).await? {
                        return Err(ended_early());
                    }
                }
                self.buf.split_to(n).freeze()
            }
            Framing::Chunked => {
                let mut body = BytesMut::new();
                while !http1::take_chunks(&mut self.buf, &mut body).map_err(malformed)? {
                    if !self.fill(0).await? {
                        return Err(ended_early());
                    }
                }
                body.freeze()
            }
            Framing::UntilClose => {
                while self.fill(0).await? {
                    if self.buf.len() > http1::MAX_BODY {
                        return Err(malformed(http1::FramingError(format!(
                            "a body over {} bytes",
                            http1::MAX_BODY
                        ))));
                    }
                }
                self.buf.split().freeze()
            }
        };
        self.last_reply = Instant::now();
        Ok((head, body))
    }
}

/// A keep-alive connection to one Lambda API endpoint.
pub struct Client {
    authority: String,
    connection: Option<Connection>,
    /// Requests being encoded: heads, with small bodies inline.
    out: BytesMut,
    /// Encoded requests waiting to be written, in order.
    unsent: Vec<Bytes>,
    /// How many requests are queued and not yet written.
    queued: usize,
    /// Requests written on `connection` whose replies are still to be read.
    in_flight: usize,
    /// Requests whose connection ended before their replies came: each
    /// [`receive`](Self::receive) reports one of them, oldest first.
    lost: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("authority", &self.authority)
            .field("connected", &self.connection.is_some())
            .field("queued", &self.queued)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl Client {
    /// A client for `endpoint`; it connects on the first request.
    pub fn new(endpoint: &Endpoint) -> Self {
        Client {
            authority: endpoint.authority().to_owned(),
            connection: None,
            out: BytesMut::new(),
            unsent: Vec::new(),
            queued: 0,
            in_flight: 0,
            lost: 0,
        }
    }

    /// Lends `buf` the open connection's read buffer (swapping the two) when both hold no
    /// bytes, with room for a body of `len` bytes; says whether it did. Give it back with
    /// [`return_read_buffer`](Self::return_read_buffer) before the next read.
    ///
    /// The runtime writes a response there once it has parsed the event, so a large event
    /// and its large answer share one allocation instead of two. A large body also gets a
    /// read's worth of room behind it: the replies that follow it are read while its bytes
    /// are still held (to be sent again if the connection drops), and without that room
    /// the buffer would grow into fresh memory, and fault its pages in, every time.
    pub fn lend_read_buffer(&mut self, buf: &mut BytesMut, len: usize) -> bool {
        match &mut self.connection {
            Some(conn) if conn.buf.is_empty() && buf.is_empty() => {
                std::mem::swap(&mut conn.buf, buf);
                if len >= READ_CHUNK {
                    buf.reserve(len + READ_CHUNK);
                }
                true
            }
            _ => false,
        }
    }

    /// Takes back what [`lend_read_buffer`](Self::lend_read_buffer) lent, less whatever the
    /// borrower left in it (a body split off keeps only its own bytes).
    pub fn return_read_buffer(&mut self, buf: &mut BytesMut) {
        if let Some(conn) = &mut self.connection {
            buf.clear();
            std::mem::swap(&mut conn.buf, buf);
        }
    }

    /// Sends `req` and reads the whole reply. A non-2xx status becomes a typed [`ApiError`].
    ///
    /// An idle connection the server has closed is noticed before anything is written on
    /// it, and the request goes out on a fresh one; a request that may have reached the
    /// server is never sent twice.
    pub async fn send(&mut self, req: Request<Body>) -> Result<ApiResponse, ApiError> {
        self.queue(req);
        self.receive().await
    }

    /// Queues `req` to be written, together with anything else queued, by the next
    /// [`receive`](Self::receive). Every queued request is owed a `receive`: replies are
    /// handed out in the order their requests were queued.
    pub fn queue(&mut self, req: Request<Body>) {
        http1::encode_head(&req, &mut self.out);
        self.push_body(req.into_body());
    }

    /// Queues `body` after the head just framed into the outgoing buffer.
    fn push_body(&mut self, body: Bytes) {
        if body.len() <= INLINE_BODY {
            self.out.extend_from_slice(&body);
        } else {
            self.unsent.push(self.out.split().freeze());
            self.unsent.push(body);
        }
        self.queued += 1;
    }

    /// Queues a request whose head `encode_head` frames into the outgoing buffer (such as
    /// [`RuntimeApi::encode_response_head`](crate::RuntimeApi::encode_response_head)),
    /// then `body`, as [`queue`](Self::queue) does. On an error nothing is queued.
    pub fn queue_framed<E>(
        &mut self,
        encode_head: impl FnOnce(&mut BytesMut) -> Result<(), E>,
        body: Bytes,
    ) -> Result<(), E> {
        let start = self.out.len();
        if let Err(e) = encode_head(&mut self.out) {
            self.out.truncate(start);
            return Err(e);
        }
        self.push_body(body);
        Ok(())
    }

    /// Queues a request framed by [`EncodedRequest::new`], as [`queue`](Self::queue) does.
    pub fn queue_encoded(&mut self, req: &EncodedRequest) {
        self.out.extend_from_slice(&req.0);
        self.queued += 1;
    }

    /// Writes `req`'s head (it must carry `Transfer-Encoding: chunked`), after anything
    /// queued before it; its body then goes out with [`send_chunk`](Self::send_chunk) and
    /// ends with [`end_chunked`](Self::end_chunked). Its reply is owed a
    /// [`receive`](Self::receive) like any queued request's.
    ///
    /// Cancel safety: the three calls write straight to the connection, so dropping one of
    /// their futures half-way leaves a request half-written. Finish the body (or drop the
    /// client) before sending anything else.
    pub async fn begin_chunked(&mut self, req: Request<Body>) -> Result<(), ApiError> {
        self.queue(req);
        self.flush().await.map_err(|e| self.fail(e))
    }

    /// Writes one chunk of the body begun by [`begin_chunked`](Self::begin_chunked) and
    /// returns once the kernel has taken it: a reader that does not keep up holds the
    /// writer back, so a stream is never buffered here. Empty chunks are skipped (an empty
    /// chunk would end the body).
    pub async fn send_chunk(&mut self, data: Bytes) -> Result<(), ApiError> {
        if data.is_empty() {
            return Ok(());
        }
        let Some(conn) = self.connection.as_mut() else {
            return Err(self.fail(transport(
                "sending to the Lambda API",
                "the connection ended during a streamed body",
            )));
        };
        let mut segments = [
            http1::chunk_size_line(data.len()),
            data,
            Bytes::from_static(b"\r\n"),
        ];
        match conn.write(&mut segments).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Refused part-way (a 413 past the streaming limit): report that answer.
                if self.in_flight == 1 {
                    self.in_flight = 0;
                    if let Some(early) = self.early_reply().await {
                        return early.map(|_| ());
                    }
                    self.in_flight = 1;
                }
                Err(self.fail(transport("sending to the Lambda API", e)))
            }
        }
    }

    /// Ends the chunked body with `trailers` (RFC 9112 §7.1.2). The end is written together
    /// with whatever is queued next, by the next [`receive`](Self::receive).
    pub fn end_chunked(&mut self, trailers: &[(&str, &HeaderValue)]) {
        http1::last_chunk(trailers, &mut self.out);
    }

    /// Writes whatever is queued (in one write), then reads the reply to the oldest request
    /// still owed one. When the connection fails, this and every other reply owed on it
    /// come back as transport errors, one per call.
    ///
    /// Cancel safety: dropping the future is safe while it waits for a reply's head or for
    /// a body framed by `Content-Length` (what has arrived stays in the client's buffer,
    /// and the next `receive` picks up where this one stopped). It is not safe while
    /// requests are being written or a chunked body is being read: the client can then no
    /// longer tell what the server received, or where the reply ends, so drop the client
    /// too. The runtime never drops it; a caller that needs a time limit should put it
    /// around the whole client.
    pub async fn receive(&mut self) -> Result<ApiResponse, ApiError> {
        if self.lost > 0 {
            self.lost -= 1;
            return Err(transport(
                "waiting for the Lambda API reply",
                "the connection ended before this request was answered",
            ));
        }
        if self.queued > 0 || !self.out.is_empty() {
            let answered_before = self.in_flight == 0;
            if let Err(e) = self.flush().await {
                if answered_before {
                    if let Some(early) = self.early_reply().await {
                        return early;
                    }
                }
                return Err(self.fail(e));
            }
        }
        let Some(conn) = self.connection.as_mut().filter(|_| self.in_flight > 0) else {
            return Err(transport(
                "waiting for the Lambda API reply",
                "no request is waiting for a reply",
            ));
        };
        let (head, body) = match conn.read_reply().await {
            Ok(reply) => reply,
            Err(e) => return Err(self.fail(e)),
        };
        self.in_flight -= 1;
        if !head.keep_alive {
            self.close();
        }
        answer(head, body)
    }

    /// After a write failed on a connection that owed nothing else: the server may have
    /// answered the first request early and closed (Go's server and ours answer 413 to an
    /// oversized body without reading it). That answer, when it is there, is the reply to
    /// the request; whatever was queued behind it is lost with the connection.
    async fn early_reply(&mut self) -> Option<Result<ApiResponse, ApiError>> {
        let conn = self.connection.as_mut()?;
        let reply = tokio::time::timeout(EARLY_REPLY_WAIT, conn.read_reply()).await;
        let Ok(Ok((head, body))) = reply else {
            return None;
        };
        self.connection = None;
        self.lost += self.queued.saturating_sub(1);
        self.queued = 0;
        self.unsent.clear();
        self.out.clear();
        Some(answer(head, body))
    }

    /// The reply just received did not answer its request (a broken server sent one reply
    /// too many): that request's answer is still owed, and the next
    /// [`receive`](Self::receive) reads it from the same connection. When the connection is
    /// gone, that `receive` reports the request as lost instead.
    pub fn owe_reply(&mut self) {
        if self.connection.is_some() {
            self.in_flight += 1;
        } else {
            self.lost += 1;
        }
    }

    /// Forgets the requests whose connection ended before they were answered (their
    /// [`receive`](Self::receive)s would only report that): for a caller that sends again
    /// what it still needs. Returns how many there were.
    pub fn forget_lost(&mut self) -> usize {
        std::mem::take(&mut self.lost)
    }

    /// Writes the queued requests, on the open connection unless it has gone stale.
    async fn flush(&mut self) -> Result<(), ApiError> {
        if !self.out.is_empty() {
            self.unsent.push(self.out.split().freeze());
        }
        let in_flight = self.in_flight;
        let conn = match self.connection.take() {
            Some(c) if in_flight > 0 || !c.gone_stale() => c,
            _ => Connection::open(&self.authority).await?,
        };
        let conn = self.connection.insert(conn);
        conn.write(&mut self.unsent)
            .await
            .map_err(|e| transport("sending to the Lambda API", e))?;
        self.unsent.clear();
        self.in_flight += self.queued;
        self.queued = 0;
        Ok(())
    }

    /// Drops the connection: replies still owed on it will never come.
    fn close(&mut self) {
        self.connection = None;
        self.lost += self.in_flight;
        self.in_flight = 0;
    }

    /// After a transport failure: the connection and everything queued are dropped, and
    /// `error` is the answer for the oldest request owed a reply.
    fn fail(&mut self, error: ApiError) -> ApiError {
        self.close();
        self.lost += self.queued;
        self.queued = 0;
        self.unsent.clear();
        self.out.clear();
        self.lost = self.lost.saturating_sub(1);
        error
    }

    /// A long-poll with bounded retries: transport failures and 5xx answers are retried
    /// [`POLL_ATTEMPTS`] times with exponential backoff from [`POLL_BACKOFF`], calling
    /// `on_retry(attempt, error)` before each pause; anything else is returned at once.
    pub async fn poll(
        &mut self,
        request: impl Fn() -> Request<Body>,
        on_retry: impl FnMut(u32, &ApiError),
    ) -> Result<ApiResponse, ApiError> {
        self.queue(request());
        self.poll_queued(request, on_retry).await
    }

    /// [`poll`](Self::poll) for a long-poll that is already queued (or in flight) as the
    /// oldest request owed a reply: its reply is the first attempt.
    pub async fn poll_queued(
        &mut self,
        request: impl Fn() -> Request<Body>,
        mut on_retry: impl FnMut(u32, &ApiError),
    ) -> Result<ApiResponse, ApiError> {
        let mut pause = POLL_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.receive().await {
                Err(e @ (ApiError::Transport(_) | ApiError::Server(..)))
                    if attempt < POLL_ATTEMPTS =>
                {
                    on_retry(attempt, &e);
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                    self.queue(request());
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime_api::RuntimeApi;
    use std::future::pending;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn read_request(sock: &mut TcpStream) -> String {
        read_requests(sock, 1).await
    }

    /// Reads until `count` request heads (and the small bodies between them) are in.
    async fn read_requests(sock: &mut TcpStream, count: usize) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let heads = |b: &[u8]| b.windows(11).filter(|w| w == b" HTTP/1.1\r\n").count();
        while heads(&buf) < count || !buf.ends_with(b"\r\n\r\n") {
            let n = sock.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Both requests are written before either reply is read: the server answers only
    /// once it holds both, so a client that waited for the first reply would time out.
    #[tokio::test]
    async fn queued_requests_go_out_together_and_replies_come_back_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let both = read_requests(&mut sock, 2).await;
            // The answer, then a chunked event, in one write.
            sock.write_all(
                b"HTTP/1.1 202 Accepted\r\ncontent-length: 15\r\n\r\n{\"status\":\"OK\"}\
                  HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: id-2\r\nX-Odd: \xff\r\nTransfer-Encoding: chunked\r\n\r\n\
                  4\r\n{\"n\"\r\n3\r\n:2}\r\n0\r\n\r\n",
            )
            .await
            .unwrap();
            both
        });
        let endpoint = Endpoint::parse(&addr.to_string()).unwrap();
        let api = RuntimeApi::new(endpoint.clone());
        let mut client = Client::new(&endpoint);
        client.queue(
            api.response("id-1", Bytes::from_static(b"{}"), "application/json")
                .unwrap(),
        );
        client.queue_encoded(&EncodedRequest::new(&api.next()));
        let replies = async {
            let answer = client.receive().await.unwrap();
            let event = client.receive().await.unwrap();
            (answer, event)
        };
        let (answer, event) = tokio::time::timeout(Duration::from_secs(10), replies)
            .await
            .expect("the client waited for a reply before writing the second request");
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        assert_eq!(event.body, r#"{"n":2}"#);
        assert_eq!(event.header("lambda-runtime-aws-request-id"), Some("id-2"));
        assert_eq!(
            event.header("x-odd"),
            None,
            "a value that is not text is skipped"
        );
        assert_eq!(event.headers().count(), 2);
        let wire = server.await.unwrap();
        assert!(
            wire.starts_with("POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\n"),
            "{wire}"
        );
        assert!(
            wire.contains("\r\n\r\n{}GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n"),
            "{wire}"
        );
    }

    /// A streamed response goes out as a chunked body whose error ends in real trailers
    /// (declared up front), never in the body, and `/next` follows the last chunk in the
    /// same write.
    #[tokio::test]
    async fn a_streamed_body_ends_with_real_trailers_and_next_rides_behind_it() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut wire = Vec::new();
            let mut chunk = [0u8; 4096];
            let next_line = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n";
            while !(wire.windows(next_line.len()).any(|w| w == next_line)
                && wire.ends_with(b"\r\n\r\n"))
            {
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the client closed early");
                wire.extend_from_slice(&chunk[..n]);
            }
            sock.write_all(
                b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]",
            )
            .await
            .unwrap();
            String::from_utf8(wire).unwrap()
        });
        let endpoint = Endpoint::parse(&addr.to_string()).unwrap();
        let api = RuntimeApi::new(endpoint.clone());
        let mut client = Client::new(&endpoint);
        let head = api
            .streaming_response("id-1", HeaderValue::from_static("text/plain"))
            .unwrap();
        client.begin_chunked(head).await.unwrap();
        client
            .send_chunk(Bytes::from_static(b"hello "))
            .await
            .unwrap();
        client.send_chunk(Bytes::new()).await.unwrap();
        client
            .send_chunk(Bytes::from_static(b"world"))
            .await
            .unwrap();
        let trailers =
            crate::stream_error_trailers("Function.Cut", br#"{"errorType":"Function.Cut"}"#);
        let fields = trailers.each_ref().map(|(n, v)| (*n, v));
        client.end_chunked(&fields);
        client.queue_encoded(&EncodedRequest::new(&api.next()));
        assert_eq!(client.receive().await.unwrap().status, StatusCode::ACCEPTED);
        assert_eq!(client.receive().await.unwrap().body, "[]");
        let wire = server.await.unwrap();
        let (head, rest) = wire.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1"));
        for line in [
            "lambda-runtime-function-response-mode: streaming",
            "transfer-encoding: chunked",
            "trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
            "content-type: text/plain",
        ] {
            assert!(
                head.lines().any(|l| l == line),
                "{line:?} missing from {head}"
            );
        }
        assert!(!head.contains("content-length"), "{head}");
        assert_eq!(
            rest,
            "6\r\nhello \r\n5\r\nworld\r\n0\r\n\
             lambda-runtime-function-error-type: Function.Cut\r\n\
             lambda-runtime-function-error-body: eyJlcnJvclR5cGUiOiJGdW5jdGlvbi5DdXQifQ==\r\n\r\n\
             GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: 127.0.0.1:PORT\r\n\r\n"
                .replace("PORT", &addr.port().to_string())
        );
    }

    /// Go's server closes the connection after refusing an oversized body, dropping the
    /// `/next` queued behind it: that reply comes back as a transport error, and the
    /// long-poll retries on a fresh connection and gets the event.
    #[tokio::test]
    async fn a_request_lost_to_a_closing_server_is_polled_again() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            read_requests(&mut sock, 2).await;
            let refusal = r#"{"errorType":"RequestEntityTooLarge","errorMessage":"too big"}"#;
            let reply = format!(
                "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{refusal}",
                refusal.len()
            );
            sock.write_all(reply.as_bytes()).await.unwrap();
            drop(sock);
            let (mut sock, _) = listener.accept().await.unwrap();
            read_request(&mut sock).await;
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                .await
                .unwrap();
            pending::<()>().await;
        });
        let endpoint = Endpoint::parse(&addr.to_string()).unwrap();
        let api = RuntimeApi::new(endpoint.clone());
        let mut client = Client::new(&endpoint);
        client.queue(
            api.response("id-1", Bytes::from_static(b"[]"), "application/json")
                .unwrap(),
        );
        client.queue(api.next());
        let refused = client.receive().await.unwrap_err();
        assert!(
            matches!(refused, ApiError::PayloadTooLarge(_)),
            "{refused:?}"
        );
        let mut retries = Vec::new();
        let event = client
            .poll_queued(|| api.next(), |n, e| retries.push((n, e.to_string())))
            .await
            .unwrap();
        assert_eq!(event.body, "{}");
        assert_eq!(retries.len(), 1, "{retries:?}");
        assert!(retries[0].1.contains("connection ended"), "{retries:?}");
    }

    /// A server that closes an idle connection without saying so: after a quiet spell the
    /// client asks the kernel, sees the close, and sends on a fresh connection. The close
    /// comes while the runtime thread is blocked, so tokio itself never hears of it.
    #[tokio::test]
    async fn a_connection_closed_while_idle_is_replaced_before_writing() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (read_tx, read_rx) = std::sync::mpsc::channel::<()>();
        let (closed_tx, closed_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut accepted = 0;
            for (i, sock) in listener.incoming().take(2).enumerate() {
                let mut sock = sock.unwrap();
                accepted += 1;
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).unwrap();
                let body = format!("event-{i}");
                write!(
                    sock,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                if i == 0 {
                    // Close only once the client has read the reply and gone idle.
                    read_rx.recv().unwrap();
                    drop(sock);
                    closed_tx.send(()).unwrap();
                }
            }
            accepted
        });
        let endpoint = Endpoint::parse(&addr.to_string()).unwrap();
        let api = RuntimeApi::new(endpoint.clone());
        let mut client = Client::new(&endpoint);
        assert_eq!(client.send(api.next()).await.unwrap().body, "event-0");
        read_tx.send(()).unwrap();
        closed_rx.recv().unwrap();
        std::thread::sleep(QUIET + Duration::from_millis(50));
        assert_eq!(client.send(api.next()).await.unwrap().body, "event-1");
        assert_eq!(server.join().unwrap(), 2);
    }

    /// A server that answers one request per connection and then closes it: the client
    /// must notice and reconnect instead of failing the second request.
    #[tokio::test]
    async fn reconnects_after_the_server_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut lines = Vec::new();
            for i in 0..3 {
                let (mut sock, _) = listener.accept().await.unwrap();
                let req = read_request(&mut sock).await;
                lines.push(req.lines().next().unwrap().to_owned());
                let body = format!("event-{i}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: id-{i}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
            }
            lines
        });
        let endpoint = Endpoint::parse(&addr.to_string()).unwrap();
        let api = RuntimeApi::new(endpoint.clone());
        let mut client = Client::new(&endpoint);
        for i in 0..3 {
            let r = client.send(api.next()).await.unwrap();
            assert_eq!(r.body, format!("event-{i}"));
        }
        let lines = server.await.unwrap();
        assert!(
            lines
                .iter()
                .all(|l| l == "GET /2018-06-01/runtime/invocation/next HTTP/1.1"),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn error_statuses_are_typed_and_unreachable_is_transport() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            read_request(&mut sock).await;
            let body = r#"{"errorType":"InvalidStateTransition","errorMessage":"no"}"#;
            let resp = format!(
                "HTTP/1.1 403 Forbidden\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
        });
        let endpoint = Endpoint::parse(&addr.to_string()).unwrap();
        let api = RuntimeApi::new(endpoint.clone());
        let mut client = Client::new(&endpoint);
        match client.send(api.next()).await {
            Err(ApiError::Forbidden(b)) => assert_eq!(b.error_type, "InvalidStateTransition"),
            other => panic!("{other:?}"),
        }

        // Nothing listens on a port we just released.
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let endpoint = Endpoint::parse(&closed.to_string()).unwrap();
        let mut client = Client::new(&endpoint);
        let err = client
            .send(RuntimeApi::new(endpoint).next())
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::Transport(_)), "{err:?}");
        assert!(err.to_string().contains("unreachable"), "{err}");
    }
}
