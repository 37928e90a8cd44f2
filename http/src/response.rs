//! What a service answers ([`IntoResponse`]), and how that answer goes back in the shape
//! its trigger expects.
//!
//! - REST API and WebSocket API: `statusCode`, `multiValueHeaders` (every value of every
//!   header, `Set-Cookie` included), `body`, `isBase64Encoded`.
//! - HTTP API and Function URL (payload 2.0): `statusCode`, `headers` (repeated values
//!   joined with `, `), `cookies` (each `Set-Cookie`), `body`, `isBase64Encoded`.
//! - ALB: `statusCode`, `statusDescription` (`200 OK`), then `multiValueHeaders` when the
//!   target group has them on, else `headers`: one value per name, so repeated values are
//!   joined with `, ` and only the last `Set-Cookie` survives (a warning says so).
//! - Streaming (a Function URL in `RESPONSE_STREAM` mode, API Gateway streaming): the
//!   runtime's HTTP-integration prelude (status, headers, cookies), then the body as the
//!   service produces it.
//!
//! A body goes as text unless its content type is binary (or it has a
//! `Content-Encoding`, or is not UTF-8), when it goes base64 with `isBase64Encoded: true`;
//! [`Adapter::binary_when`](crate::Adapter::binary_when) changes the rule.

use std::borrow::Cow;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use base64::Engine;
use bytes::{Buf, Bytes};
use futures_core::Stream;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;
use ironlambda_api_client::http_integration;
use ironlambda_runtime::{Error, HttpIntegration, ResponseBuffer, Streaming};
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};

use crate::body::Body;
use crate::context::Trigger;

/// A boxed error, what response bodies may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: bytes, or any `http_body::Body` (a stream, an axum body).
pub struct ResponseBody(Inner);

enum Inner {
    Bytes(Bytes),
    Boxed(Pin<Box<dyn HttpBody<Data = Bytes, Error = BoxError> + Send>>),
}

impl ResponseBody {
    /// Wraps any body whose chunks are bytes.
    pub fn new<B>(body: B) -> Self
    where
        B: HttpBody + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        // A `ResponseBody` given back (an `http::Response<ResponseBody>` answered again) is
        // taken as it is rather than boxed a second time.
        let mut slot = Some(body);
        if let Some(own) =
            (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<ResponseBody>>()
        {
            if let Some(own) = own.take() {
                return own;
            }
        }
        match slot {
            Some(body) => ResponseBody(Inner::Boxed(Box::pin(
                body.map_frame(|f| f.map_data(|mut d| d.copy_to_bytes(d.remaining())))
                    .map_err(Into::into),
            ))),
            // Only a `ResponseBody` is ever taken, and that returned above.
            None => ResponseBody(Inner::Bytes(Bytes::new())),
        }
    }

    /// The whole body, once the service has produced it.
    async fn collect(self) -> Result<Bytes, Error> {
        match self.0 {
            Inner::Bytes(b) => Ok(b),
            Inner::Boxed(body) => body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .map_err(|e| Error::from_boxed(e).with_error_type("Http.ResponseBody")),
        }
    }
}

/// A response body is itself an `http_body::Body`, so tests (and middleware) can read it.
impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        match &mut self.0 {
            Inner::Bytes(b) if b.is_empty() => Poll::Ready(None),
            Inner::Bytes(b) => Poll::Ready(Some(Ok(http_body::Frame::data(std::mem::take(b))))),
            Inner::Boxed(body) => body.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Bytes(b) => b.is_empty(),
            Inner::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.0 {
            Inner::Bytes(b) => http_body::SizeHint::with_exact(b.len() as u64),
            Inner::Boxed(body) => body.size_hint(),
        }
    }
}

impl From<Bytes> for ResponseBody {
    fn from(b: Bytes) -> Self {
        ResponseBody(Inner::Bytes(b))
    }
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Inner::Bytes(b) => write!(f, "ResponseBody({} bytes)", b.len()),
            Inner::Boxed(_) => f.write_str("ResponseBody(a body)"),
        }
    }
}

/// What a plain async fn service may answer: an `http::Response` with any body, text,
/// bytes, [`Json`], a status, or a status with any of these.
///
/// ```
/// use http::StatusCode;
/// use ironlambda_http::{IntoResponse, Json};
/// let a = "Hello".into_response();
/// let b = (StatusCode::CREATED, Json(serde_json::json!({"id": 7}))).into_response();
/// let c = StatusCode::NO_CONTENT.into_response();
/// assert_eq!(a.headers()["content-type"], "text/plain; charset=utf-8");
/// assert_eq!(b.status(), 201);
/// assert_eq!(c.status(), 204);
/// ```
pub trait IntoResponse {
    /// The response.
    fn into_response(self) -> http::Response<ResponseBody>;
}

impl<B> IntoResponse for http::Response<B>
where
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn into_response(self) -> http::Response<ResponseBody> {
        self.map(ResponseBody::new)
    }
}

/// `content_type` and `body` as a 200 response.
fn typed(content_type: &'static str, body: Bytes) -> http::Response<ResponseBody> {
    let mut r = http::Response::new(ResponseBody::from(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

const TEXT: &str = "text/plain; charset=utf-8";
const OCTETS: &str = "application/octet-stream";

impl IntoResponse for String {
    fn into_response(self) -> http::Response<ResponseBody> {
        typed(TEXT, Bytes::from(self))
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> http::Response<ResponseBody> {
        typed(TEXT, Bytes::from_static(self.as_bytes()))
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> http::Response<ResponseBody> {
        typed(OCTETS, Bytes::from(self))
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> http::Response<ResponseBody> {
        typed(OCTETS, self)
    }
}

impl IntoResponse for Body {
    fn into_response(self) -> http::Response<ResponseBody> {
        self.into_bytes().into_response()
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> http::Response<ResponseBody> {
        let mut r = http::Response::new(ResponseBody::from(Bytes::new()));
        *r.status_mut() = self;
        r
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> http::Response<ResponseBody> {
        let mut r = self.1.into_response();
        *r.status_mut() = self.0;
        r
    }
}

/// A value sent as JSON (`application/json`).
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> http::Response<ResponseBody> {
        match serde_json::to_vec(&self.0) {
            Ok(json) => typed("application/json", Bytes::from(json)),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the response could not be serialized: {e}"),
            )
                .into_response(),
        }
    }
}

/// Whether a response body goes base64: the default rule, or the user's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encoding {
    pub(crate) binary_when: fn(&HeaderMap) -> bool,
}

/// The default rule: binary when the body is compressed (`Content-Encoding`) or its
/// content type is not a text type. A response without a content type is text.
pub fn is_binary(headers: &HeaderMap) -> bool {
    if headers.contains_key(CONTENT_ENCODING) {
        return true;
    }
    match headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => !http_integration::is_text_content_type(ct),
        None => false,
    }
}

/// A response rendered for its trigger, ready for the runtime to send.
pub enum HttpOutput {
    /// The trigger's JSON response shape.
    Buffered(Rendered),
    /// An HTTP-integration prelude and a streamed body.
    Streaming(HttpIntegration),
}

impl std::fmt::Debug for HttpOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpOutput::Buffered(r) => write!(f, "HttpOutput::Buffered({})", r.status),
            HttpOutput::Streaming(_) => f.write_str("HttpOutput::Streaming"),
        }
    }
}

impl ironlambda_runtime::IntoResponse for HttpOutput {
    fn into_response(
        self,
        buf: &mut ResponseBuffer,
    ) -> Result<ironlambda_runtime::Response, Error> {
        match self {
            HttpOutput::Buffered(r) => r.into_response(buf),
            HttpOutput::Streaming(s) => s.into_response(buf),
        }
    }
}

/// A buffered response in its trigger's shape. It is `Serialize`, so the runtime writes
/// it straight into its reusable buffer, encoding the body on the way.
pub struct Rendered {
    trigger: Trigger,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    base64: bool,
}

impl Rendered {
    /// Collects `response`'s body and decides its encoding.
    pub(crate) async fn new(
        trigger: Trigger,
        response: http::Response<ResponseBody>,
        encoding: Encoding,
    ) -> Result<Self, Error> {
        let (parts, body) = response.into_parts();
        let body = body.collect().await?;
        let base64 = (encoding.binary_when)(&parts.headers) || std::str::from_utf8(&body).is_err();
        if matches!(trigger, Trigger::Alb { multi_value: false })
            && parts.headers.get_all(SET_COOKIE).iter().nth(1).is_some()
        {
            tracing::warn!(
                "the ALB target group has multi-value headers off, so only the last Set-Cookie reaches the client; turn them on to send every cookie"
            );
        }
        Ok(Rendered {
            trigger,
            status: parts.status,
            headers: parts.headers,
            body,
            base64,
        })
    }
}

impl Serialize for Rendered {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("statusCode", &self.status.as_u16())?;
        match self.trigger {
            Trigger::ApiGatewayRest | Trigger::WebSocket => {
                map.serialize_entry("multiValueHeaders", &MultiValue(&self.headers))?;
            }
            Trigger::ApiGatewayHttp | Trigger::FunctionUrl => {
                map.serialize_entry("headers", &Joined(&self.headers, Cookies::Apart))?;
                let cookies = Values(&self.headers, SET_COOKIE.as_str());
                if self.headers.contains_key(SET_COOKIE) {
                    map.serialize_entry("cookies", &cookies)?;
                }
            }
            Trigger::Alb { multi_value } => {
                let description = format!(
                    "{} {}",
                    self.status.as_u16(),
                    self.status.canonical_reason().unwrap_or("Unknown")
                );
                map.serialize_entry("statusDescription", &description)?;
                if multi_value {
                    map.serialize_entry("multiValueHeaders", &MultiValue(&self.headers))?;
                } else {
                    map.serialize_entry("headers", &Joined(&self.headers, Cookies::Last))?;
                }
            }
        }
        if self.base64 {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&self.body);
            map.serialize_entry("body", &encoded)?;
        } else {
            // Checked UTF-8 when the encoding was decided.
            map.serialize_entry("body", &String::from_utf8_lossy(&self.body))?;
        }
        map.serialize_entry("isBase64Encoded", &self.base64)?;
        map.end()
    }
}

/// Headers as `{"name": ["v1", "v2"]}`.
struct MultiValue<'a>(&'a HeaderMap);

impl Serialize for MultiValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            map.serialize_entry(name.as_str(), &Values(self.0, name.as_str()))?;
        }
        map.end()
    }
}

/// Every value of one header, as a JSON array.
struct Values<'a>(&'a HeaderMap, &'a str);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for v in self.0.get_all(self.1) {
            seq.serialize_element(&text(v))?;
        }
        seq.end()
    }
}

/// What single-value headers do with `Set-Cookie`.
#[derive(Clone, Copy, PartialEq)]
enum Cookies {
    /// Left out: they travel in `cookies`.
    Apart,
    /// The last one only (cookies cannot be joined with commas).
    Last,
}

/// Headers as `{"name": "v1, v2"}` (the rule is api-client's), `Set-Cookie` as [`Cookies`]
/// says.
struct Joined<'a>(&'a HeaderMap, Cookies);

impl Serialize for Joined<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let last_cookie = match self.1 {
            Cookies::Apart => None,
            Cookies::Last => self.0.get_all(SET_COOKIE).iter().next_back(),
        };
        let pairs = self
            .0
            .iter()
            .filter(|(name, _)| *name != SET_COOKIE)
            .chain(last_cookie.map(|v| (&SET_COOKIE, v)))
            .map(|(name, value)| (name.as_str(), text(value)));
        http_integration::serialize_joined_headers(pairs, serializer)
    }
}

/// A header value as text (bytes outside ASCII are kept, lossily, rather than dropped).
fn text(v: &HeaderValue) -> Cow<'_, str> {
    match v.to_str() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v.as_bytes()),
    }
}

/// `response` as an HTTP-integration prelude and a body streamed as it is produced.
pub(crate) fn streamed(response: http::Response<ResponseBody>) -> HttpIntegration {
    let (parts, body) = response.into_parts();
    let mut out = HttpIntegration::new(parts.status.as_u16());
    for (name, value) in &parts.headers {
        if name == SET_COOKIE {
            out = out.cookie(text(value));
        } else {
            out = out.header(name.as_str(), text(value));
        }
    }
    match body.0 {
        Inner::Bytes(b) => out.body(b),
        Inner::Boxed(body) => out.stream(Streaming::new(Chunks(body))),
    }
}

/// A body's data frames as a stream of chunks (trailers are not part of a Lambda
/// response and are dropped).
struct Chunks(Pin<Box<dyn HttpBody<Data = Bytes, Error = BoxError> + Send>>);

impl Stream for Chunks {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match self.0.as_mut().poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from_boxed(e)))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    Err(_trailers) => continue,
                },
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn compressed_or_binary_bodies_go_base64_and_untyped_ones_as_text() {
        assert!(!is_binary(&headers(&[("content-type", "text/html")])));
        assert!(is_binary(&headers(&[("content-type", "image/png")])));
        assert!(is_binary(&headers(&[
            ("content-type", "text/html"),
            ("content-encoding", "gzip")
        ])));
        assert!(!is_binary(&HeaderMap::new()));
    }
}
