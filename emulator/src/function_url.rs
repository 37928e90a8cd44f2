//! The Function URL front door (`--url-port`): plain HTTP in, as a Function URL serves
//! it, so `curl` and a browser can call an HTTP function.
//!
//! - Each request becomes a payload format 2.0 event with a `*.lambda-url.*` domain:
//!   `rawPath`, `rawQueryString` verbatim, headers (repeated ones joined with `,`),
//!   `cookies`, the body as text when its content type is textual, else base64.
//! - With several functions, the first path segment names the function (`/hello/x` goes
//!   to `hello` as `/x`); with one, every path is its.
//! - A buffered answer is read as a Function URL reads it: `statusCode`, `headers`,
//!   `cookies` (each a `Set-Cookie`), `body` (base64 decoded when `isBase64Encoded`). An
//!   answer without `statusCode` is the body of a 200 `application/json` response.
//! - A streamed answer with the HTTP-integration content type has its prelude read
//!   (status, headers, cookies) wherever the chunks split it, and its body streamed on as
//!   it arrives. A failure part-way cuts the response off (no final chunk), which is what
//!   a client of a streaming Function URL sees.
//! - A function error, a timeout, a crash or an answer that is not a response gives 502
//!   `Internal Server Error`; the log says why.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, COOKIE, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use ironlambda_api_client::headers;
use ironlambda_api_client::http_integration::{self, PRELUDE_SEPARATOR, ResponseHead};
use ironlambda_api_client::wire::MAX_INVOKE_PAYLOAD;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::calls::{
    Following, Invocation, InvokeResult, Piece, PostedBody, ResponseStream, StreamEnd,
};
use crate::http_util::read_limited;
use crate::invoke_api::{InvokeTarget, new_trace_id};

/// A reply of the front door; its body fails when a streamed response fails part-way, so
/// that the connection is cut instead of ending cleanly.
pub(crate) type UrlReply = Response<http_body_util::combinators::UnsyncBoxBody<Bytes, Cut>>;

/// Longest prelude read before the response is refused (API Gateway reportedly wants it
/// in the first 16 KB; a Function URL's limit is not documented).
const MAX_PRELUDE: usize = 64 * 1024;

/// The response was cut off: the function failed after the headers went out.
#[derive(Debug)]
pub(crate) struct Cut(String);

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the function failed part-way: {}", self.0)
    }
}

impl std::error::Error for Cut {}

/// The functions behind the front door, each with its URL's id and domain (made once:
/// every event carries them).
pub(crate) struct FunctionUrls {
    targets: Arc<Vec<InvokeTarget>>,
    /// Per target, in the same order: the URL id and the domain name.
    sites: Vec<(String, String)>,
}

impl FunctionUrls {
    pub(crate) fn new(targets: Arc<Vec<InvokeTarget>>) -> Self {
        let sites = targets
            .iter()
            .map(|t| {
                // A URL id is 32 lowercase letters and digits; this one is the function's
                // name, hexed.
                let url_id: String = t
                    .config
                    .name
                    .bytes()
                    .chain(std::iter::repeat(0))
                    .take(16)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let domain_name = format!("{url_id}.lambda-url.{}.on.aws", t.config.region);
                (url_id, domain_name)
            })
            .collect();
        FunctionUrls { targets, sites }
    }
}

/// Serves one request through the function it names.
pub(crate) async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    functions: &FunctionUrls,
) -> UrlReply {
    let (picked, path) = match pick(req.uri().path(), &functions.targets) {
        Ok(picked) => picked,
        Err(message) => return text(StatusCode::NOT_FOUND, message),
    };
    let target = &functions.targets[picked];
    let (url_id, domain_name) = &functions.sites[picked];
    let method = req.method().as_str().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let (parts, body) = req.into_parts();
    let body = match read_limited(body, MAX_INVOKE_PAYLOAD).await {
        PostedBody::Complete(b) => b,
        PostedBody::TooLarge(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Request must be smaller than {MAX_INVOKE_PAYLOAD} bytes for the InvokeFunction operation"
                ),
            );
        }
        PostedBody::Truncated => {
            return text(
                StatusCode::BAD_REQUEST,
                "The request body ended early".into(),
            );
        }
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let event = event(
        url_id,
        domain_name,
        &method,
        &path,
        &query,
        &parts.headers,
        &body,
        peer,
        &request_id,
    );
    let (tx, rx) = oneshot::channel();
    let job = Invocation {
        request_id: request_id.clone(),
        body: event,
        client_context: None,
        trace_id: Some(new_trace_id()),
        reply: Some(tx),
    };
    if target.invokes.try_send(job).is_err() {
        return text(StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded.".into());
    }
    let failed = |why: String| {
        target.logs.line(format!(
            "URL {method} {path}: 502 Internal Server Error: {why}"
        ));
        text(StatusCode::BAD_GATEWAY, "Internal Server Error".into())
    };
    let mut reply = match rx.await {
        Err(_) => failed("the emulator stopped before the function answered".into()),
        Ok(InvokeResult::FunctionError { body, .. }) => failed(format!(
            "the function failed: {}",
            String::from_utf8_lossy(&body)
        )),
        Ok(InvokeResult::Success { body, .. }) => buffered(&body).unwrap_or_else(failed),
        Ok(InvokeResult::Streaming(stream)) => streamed(stream).await.unwrap_or_else(failed),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        reply.headers_mut().insert(headers::AMZN_REQUEST_ID, v);
    }
    reply
}

/// The function a path names (its index in `targets`), and the path the function sees.
fn pick(path: &str, targets: &[InvokeTarget]) -> Result<(usize, String), String> {
    if targets.len() == 1 {
        return Ok((0, path.to_owned()));
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (name, below) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    match targets.iter().position(|t| t.config.name == name) {
        Some(i) => Ok((i, below.to_owned())),
        None => {
            let names: Vec<_> = targets.iter().map(|t| t.config.name.as_str()).collect();
            Err(format!(
                "No function named {name:?}: the first path segment picks one of {}",
                names.join(", ")
            ))
        }
    }
}

/// A plain-text reply.
fn text(status: StatusCode, message: String) -> UrlReply {
    let mut r = full(Bytes::from(message));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// A Function URL event (payload format 2.0).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    route_key: &'static str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<&'a str>,
    headers: BTreeMap<&'a str, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    query_string_parameters: BTreeMap<String, String>,
    request_context: EventContext<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventContext<'a> {
    account_id: &'static str,
    api_id: &'a str,
    domain_name: &'a str,
    domain_prefix: &'a str,
    http: EventHttp<'a>,
    request_id: &'a str,
    route_key: &'static str,
    stage: &'static str,
    time: String,
    time_epoch: u128,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventHttp<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'static str,
    source_ip: String,
    user_agent: &'a str,
}

/// The event for a request, as JSON.
#[allow(clippy::too_many_arguments)]
fn event(
    url_id: &str,
    domain_name: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    peer: SocketAddr,
    request_id: &str,
) -> Bytes {
    let mut joined: BTreeMap<&str, String> = BTreeMap::new();
    for (name, value) in headers {
        if name == COOKIE {
            continue;
        }
        let value = String::from_utf8_lossy(value.as_bytes());
        joined
            .entry(name.as_str())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let cookies = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';').map(str::trim).filter(|c| !c.is_empty()))
        .collect();
    let mut query_string_parameters: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()).into_owned() {
        query_string_parameters
            .entry(name)
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let textual = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(http_integration::is_text_content_type);
    let (body, is_base64_encoded) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (None, false),
        Ok(text) if textual => (Some(text.to_owned()), false),
        _ => (
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let event = Event {
        version: "2.0",
        route_key: "$default",
        raw_path: path,
        raw_query_string: query,
        cookies,
        headers: joined,
        query_string_parameters,
        request_context: EventContext {
            account_id: "anonymous",
            api_id: url_id,
            domain_name,
            domain_prefix: url_id,
            http: EventHttp {
                method,
                path,
                protocol: "HTTP/1.1",
                source_ip: peer.ip().to_string(),
                user_agent: headers
                    .get(USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            },
            request_id,
            route_key: "$default",
            stage: "$default",
            time: ironlambda_api_client::time::request_time(now),
            time_epoch: now.as_millis(),
        },
        body,
        is_base64_encoded,
    };
    Bytes::from(serde_json::to_vec(&event).unwrap_or_default())
}

/// A buffered Function URL response (payload format 2.0): a head as the runtime writes
/// it, and a body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UrlResponse {
    #[serde(flatten)]
    head: ResponseHead,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

/// The reply's head: status, headers and one `Set-Cookie` per cookie.
fn reply_head(head: &ResponseHead) -> Result<http::response::Builder, String> {
    let status = StatusCode::from_u16(head.status_code)
        .map_err(|_| format!("statusCode {} is not an HTTP status", head.status_code))?;
    let mut builder = Response::builder().status(status);
    for (name, value) in &head.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{name:?} is not a header name"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("the value of {name} is not a header value"))?;
        builder = builder.header(name, value);
    }
    for cookie in &head.cookies {
        let value = HeaderValue::from_str(cookie)
            .map_err(|_| format!("cookie {cookie:?} is not a header value"))?;
        builder = builder.header(SET_COOKIE, value);
    }
    Ok(builder)
}

/// A buffered answer as the HTTP response a Function URL makes of it.
fn buffered(payload: &[u8]) -> Result<UrlReply, String> {
    let structured = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .filter(|v| v.get("statusCode").is_some());
    let Some(value) = structured else {
        // No statusCode: the whole answer is a JSON body (what Lambda infers).
        let mut r = full(Bytes::copy_from_slice(payload));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(r);
    };
    let response: UrlResponse = serde_json::from_value(value)
        .map_err(|e| format!("the answer is not a Function URL response: {e}"))?;
    let body = match (&response.body, response.is_base64_encoded) {
        (None, _) => Bytes::new(),
        (Some(b), true) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(Bytes::from)
            .map_err(|e| format!("isBase64Encoded, but the body is not base64: {e}"))?,
        (Some(b), false) => Bytes::from(b.clone()),
    };
    let head = reply_head(&response.head)?;
    let (mut parts, ()) = head
        .body(())
        .map_err(|e| format!("the answer's head: {e}"))?
        .into_parts();
    if !parts.headers.contains_key(CONTENT_TYPE) && !body.is_empty() {
        parts
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let r = full(body);
    let (_, b) = r.into_parts();
    Ok(Response::from_parts(parts, b))
}

fn full(body: Bytes) -> UrlReply {
    Response::new(
        http_body_util::Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    )
}

/// A streamed answer: with the HTTP-integration content type, its prelude is read first
/// and the rest streamed as the body; any other stream is the body of a 200.
async fn streamed(stream: ResponseStream) -> Result<UrlReply, String> {
    let ResponseStream {
        content_type,
        mut chunks,
        mut end,
    } = stream;
    let integration = content_type
        .as_ref()
        .is_some_and(|ct| ct.as_bytes() == http_integration::CONTENT_TYPE.as_bytes());
    if !integration {
        let mut r = Response::new(UrlBody::new(Bytes::new(), chunks, end).boxed_unsync());
        if let Some(ct) = content_type {
            r.headers_mut().insert(CONTENT_TYPE, ct);
        }
        return Ok(r);
    }
    // The prelude ends at the first 8 NULs, wherever the chunks split them.
    let mut read = BytesMut::new();
    let split = loop {
        let searched_from = read.len().saturating_sub(PRELUDE_SEPARATOR.len() - 1);
        tokio::select! {
            biased;
            chunk = chunks.recv() => match chunk {
                Some(chunk) => read.extend_from_slice(&chunk),
                None => return Err(ended(end.await.ok(), "before the prelude ended")),
            },
            ending = &mut end => return Err(ended(ending.ok(), "before the prelude ended")),
        }
        if let Some(i) = read[searched_from..]
            .windows(PRELUDE_SEPARATOR.len())
            .position(|w| w == PRELUDE_SEPARATOR)
        {
            break searched_from + i;
        }
        if read.len() > MAX_PRELUDE {
            return Err(format!(
                "no prelude separator (8 NUL bytes) in the first {MAX_PRELUDE} bytes"
            ));
        }
    };
    let prelude: ResponseHead = serde_json::from_slice(&read[..split])
        .map_err(|e| format!("the HTTP-integration prelude is not valid: {e}"))?;
    let rest = read.split_off(split + PRELUDE_SEPARATOR.len()).freeze();
    let (parts, ()) = reply_head(&prelude)?
        .body(())
        .map_err(|e| format!("the prelude's head: {e}"))?
        .into_parts();
    Ok(Response::from_parts(
        parts,
        UrlBody::new(rest, chunks, end).boxed_unsync(),
    ))
}

/// Why a stream gave no response.
fn ended(ending: Option<StreamEnd>, when: &str) -> String {
    match ending {
        Some(StreamEnd::Failed { body, .. }) => format!(
            "the function failed {when}: {}",
            String::from_utf8_lossy(&body)
        ),
        Some(StreamEnd::Complete) => format!("the stream ended {when}"),
        None => "the emulator stopped before the function answered".into(),
    }
}

/// A streamed body: what arrived with the prelude, then each chunk as it arrives. A
/// failure ends it with an error, so hyper cuts the connection instead of ending the
/// chunked body cleanly.
struct UrlBody {
    first: Option<Bytes>,
    rest: Following<StreamEnd>,
}

impl UrlBody {
    fn new(first: Bytes, chunks: mpsc::Receiver<Bytes>, end: oneshot::Receiver<StreamEnd>) -> Self {
        UrlBody {
            first: Some(first).filter(|b| !b.is_empty()),
            rest: Following::new(chunks, end),
        }
    }
}

impl Body for UrlBody {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        self.rest.poll_piece(cx).map(|piece| match piece? {
            Piece::Chunk(data) => Some(Ok(Frame::data(data))),
            Piece::Ended(Ok(StreamEnd::Complete)) => None,
            Piece::Ended(Ok(StreamEnd::Failed { error_type, .. })) => Some(Err(Cut(error_type))),
            Piece::Ended(Err(_)) => Some(Err(Cut("the emulator stopped".into()))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_a_status_code_is_a_json_body() {
        let r = buffered(br#"{"message":"hi"}"#).unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    }

    #[test]
    fn cookies_become_set_cookie_headers_and_base64_bodies_are_decoded() {
        let r = buffered(
            br#"{"statusCode":201,"headers":{"content-type":"image/png"},"cookies":["a=1","b=2"],"body":"iVBORw==","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(r.status(), 201);
        let cookies: Vec<_> = r.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    /// A stream fed with `chunks`, ending as `ending` says.
    fn stream(chunks: &[&[u8]], ending: StreamEnd) -> ResponseStream {
        let (tx, rx) = mpsc::channel(chunks.len().max(1));
        for c in chunks {
            tx.try_send(Bytes::copy_from_slice(c)).unwrap();
        }
        let (end_tx, end) = oneshot::channel();
        end_tx.send(ending).unwrap();
        ResponseStream {
            content_type: Some(HeaderValue::from_static(http_integration::CONTENT_TYPE)),
            chunks: rx,
            end,
        }
    }

    #[tokio::test]
    async fn a_prelude_split_anywhere_across_chunks_is_read_whole() {
        // edge-cases A18: the separator's NULs straddle chunks, and body bytes share the
        // separator's chunk.
        let parts: [&[u8]; 4] = [
            b"{\"statusCode\":201,\"head",
            b"ers\":{\"x-a\":\"1\"},\"cookies\":[\"c=1\"]}\0\0\0",
            b"\0\0\0\0\0he",
            b"llo",
        ];
        let r = streamed(stream(&parts, StreamEnd::Complete)).await.unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["x-a"], "1");
        assert_eq!(r.headers()[SET_COOKIE], "c=1");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello");
    }

    #[tokio::test]
    async fn a_failure_after_the_prelude_cuts_the_body_off_with_an_error() {
        let failed = StreamEnd::Failed {
            error_type: "StreamInterrupted".into(),
            body: Bytes::new(),
        };
        let r = streamed(stream(
            &[b"{\"statusCode\":200}\0\0\0\0\0\0\0\0part"],
            failed,
        ))
        .await
        .unwrap();
        let mut body = r.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "part");
        let e = body.frame().await.unwrap().unwrap_err();
        assert!(e.to_string().contains("StreamInterrupted"), "{e}");
    }

    #[tokio::test]
    async fn a_stream_that_fails_before_its_prelude_ends_is_no_response() {
        let failed = StreamEnd::Failed {
            error_type: "Sandbox.Timedout".into(),
            body: Bytes::from_static(b"timed out"),
        };
        let why = streamed(stream(&[b"{\"statusCode\""], failed))
            .await
            .unwrap_err();
        assert!(why.contains("before the prelude ended"), "{why}");
    }
}
