//! The Runtime API (`2018-06-01`): every path, request and `/next` header, built in one place
//! (protocol.md §1). The client side builds requests; the emulator parses routes with
//! [`RuntimeRoute::parse`], so both ends share one definition of the paths.

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, Request, header};

use crate::client::ApiResponse;
use crate::endpoint::Endpoint;
use crate::headers;
use crate::request_id::{InvalidRequestId, validate_request_id};

/// Version prefix of the Runtime API.
pub const VERSION_PREFIX: &str = "/2018-06-01";
/// Path of the long-poll for the next event.
pub const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";
/// Path for reporting an initialization failure.
pub const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";
const INVOCATION_PREFIX: &str = "/2018-06-01/runtime/invocation/";

/// Longest error type sent in `Lambda-Runtime-Function-Error-Type`.
pub const MAX_ERROR_TYPE_LEN: usize = 256;

/// A request body for the Lambda APIs: always sent whole, with its length.
pub type Body = Bytes;

/// A Runtime API route, as the emulator sees an incoming request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeRoute<'a> {
    /// `GET /runtime/invocation/next`
    Next,
    /// `POST /runtime/invocation/{id}/response`
    Response(&'a str),
    /// `POST /runtime/invocation/{id}/error`
    Error(&'a str),
    /// `POST /runtime/init/error`
    InitError,
}

impl<'a> RuntimeRoute<'a> {
    /// Matches a request path (without any endpoint prefix). The id is returned as sent;
    /// the emulator answers unknown ids with `400 InvalidRequestID`.
    pub fn parse(path: &'a str) -> Option<Self> {
        if path == NEXT_PATH {
            return Some(RuntimeRoute::Next);
        }
        if path == INIT_ERROR_PATH {
            return Some(RuntimeRoute::InitError);
        }
        let rest = path.strip_prefix(INVOCATION_PREFIX)?;
        if let Some(id) = rest.strip_suffix("/response") {
            Some(RuntimeRoute::Response(id))
        } else {
            rest.strip_suffix("/error").map(RuntimeRoute::Error)
        }
    }

    /// The HTTP method this route takes.
    pub fn method(&self) -> Method {
        match self {
            RuntimeRoute::Next => Method::GET,
            _ => Method::POST,
        }
    }
}

/// The trailers a streamed response declares in its `Trailer:` header.
const STREAM_TRAILERS: &str =
    "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body";

/// The trailers that end a streamed response which failed part-way (protocol.md §1.3,
/// edge-cases A17): the sanitized error type, and the error JSON in standard base64.
pub fn stream_error_trailers(
    error_type: &str,
    error_json: &[u8],
) -> [(&'static str, HeaderValue); 2] {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(error_json);
    [
        (
            headers::FUNCTION_ERROR_TYPE,
            sanitize_error_type(error_type),
        ),
        (
            headers::FUNCTION_ERROR_BODY,
            // Base64 is always a valid header value.
            HeaderValue::from_str(&body).unwrap_or_else(|_| HeaderValue::from_static("")),
        ),
    ]
}

/// Reads the error trailers of a streamed response (protocol.md §1.3): the error type, and
/// the error JSON decoded from its standard base64. A body that is not valid base64
/// leaves the details empty (edge-cases A17). `None` when no error type was sent.
pub fn read_stream_error_trailers(
    error_type: Option<&str>,
    error_body: Option<&str>,
) -> Option<(String, Option<Bytes>)> {
    use base64::Engine;
    let error_type = error_type?.to_owned();
    let body = error_body.and_then(|b| {
        base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()
            .map(Bytes::from)
    });
    Some((error_type, body))
}

/// Makes an error type safe for a header (edge-cases A20): visible ASCII only, at most
/// [`MAX_ERROR_TYPE_LEN`] bytes; anything else is replaced so the header is always sent.
pub fn sanitize_error_type(error_type: &str) -> HeaderValue {
    let cleaned: String = error_type
        .chars()
        .take(MAX_ERROR_TYPE_LEN)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    let cleaned = if cleaned.is_empty() {
        "Runtime.Unknown".to_owned()
    } else {
        cleaned
    };
    HeaderValue::from_str(&cleaned).unwrap_or_else(|_| HeaderValue::from_static("Runtime.Unknown"))
}

/// Builds Runtime API requests for one endpoint.
#[derive(Clone, Debug)]
pub struct RuntimeApi {
    endpoint: Endpoint,
    /// `/next` is sent for every invocation; its request is built once and cloned.
    next: Request<()>,
}

impl RuntimeApi {
    /// Request builder for `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        let next = endpoint
            .request(Method::GET, NEXT_PATH, Bytes::new())
            .map(|_| ());
        RuntimeApi { endpoint, next }
    }

    /// The endpoint these requests go to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `GET /runtime/invocation/next`.
    pub fn next(&self) -> Request<Body> {
        let mut req = Request::new(Bytes::new());
        *req.method_mut() = Method::GET;
        *req.uri_mut() = self.next.uri().clone();
        *req.headers_mut() = self.next.headers().clone();
        req
    }

    /// `POST /runtime/invocation/{id}/response` with a buffered body.
    pub fn response(
        &self,
        request_id: &str,
        body: Bytes,
        content_type: impl TryInto<HeaderValue>,
    ) -> Result<Request<Body>, InvalidRequestId> {
        validate_request_id(request_id)?;
        let path = [INVOCATION_PREFIX, request_id, "/response"].concat();
        let mut req = self.endpoint.request(Method::POST, &path, body);
        let content_type = content_type
            .try_into()
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
        req.headers_mut().insert(header::CONTENT_TYPE, content_type);
        Ok(req)
    }

    /// Frames the head of [`response`](Self::response) for a body of `body_len` bytes
    /// straight into `out`, byte for byte what [`Client::queue`] writes for it, without an
    /// `http::Request` to build and drop: this request is sent for every invocation. A
    /// content type that is not a valid header value is sent as
    /// `application/octet-stream`, as [`response`](Self::response) does.
    ///
    /// [`Client::queue`]: crate::Client::queue
    pub fn encode_response_head(
        &self,
        request_id: &str,
        content_type: &str,
        body_len: usize,
        out: &mut BytesMut,
    ) -> Result<(), InvalidRequestId> {
        validate_request_id(request_id)?;
        // What `HeaderValue::from_str` accepts: no control characters but the tab.
        let valid = content_type
            .bytes()
            .all(|b| b == b'\t' || (b >= b' ' && b != 0x7f));
        let content_type = if valid {
            content_type
        } else {
            "application/octet-stream"
        };
        let path = [INVOCATION_PREFIX, request_id, "/response"];
        crate::http1::encode_post(
            self.endpoint.prefix(),
            &path,
            &[
                (header::HOST.as_str(), self.endpoint.host().as_bytes()),
                (header::CONTENT_TYPE.as_str(), content_type.as_bytes()),
            ],
            body_len,
            out,
        );
        Ok(())
    }

    /// The head of a streamed `POST /runtime/invocation/{id}/response` (protocol.md §1.3):
    /// `Lambda-Runtime-Function-Response-Mode: streaming`, a chunked body, and the two
    /// error trailers declared up front. Send it with [`Client::begin_chunked`].
    ///
    /// [`Client::begin_chunked`]: crate::Client::begin_chunked
    pub fn streaming_response(
        &self,
        request_id: &str,
        content_type: HeaderValue,
    ) -> Result<Request<Body>, InvalidRequestId> {
        validate_request_id(request_id)?;
        let path = [INVOCATION_PREFIX, request_id, "/response"].concat();
        let mut req = self.endpoint.request(Method::POST, &path, Bytes::new());
        let h = req.headers_mut();
        h.insert(header::CONTENT_TYPE, content_type);
        h.insert(
            headers::FUNCTION_RESPONSE_MODE,
            HeaderValue::from_static("streaming"),
        );
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TRAILER, HeaderValue::from_static(STREAM_TRAILERS));
        Ok(req)
    }

    /// `POST /runtime/invocation/{id}/error` with an `ErrorRequest` JSON body.
    pub fn error(
        &self,
        request_id: &str,
        error_type: &str,
        json_body: Bytes,
    ) -> Result<Request<Body>, InvalidRequestId> {
        validate_request_id(request_id)?;
        let path = [INVOCATION_PREFIX, request_id, "/error"].concat();
        Ok(self.error_request(&path, error_type, json_body))
    }

    /// `POST /runtime/init/error` with an `ErrorRequest` JSON body.
    pub fn init_error(&self, error_type: &str, json_body: Bytes) -> Request<Body> {
        self.error_request(INIT_ERROR_PATH, error_type, json_body)
    }

    fn error_request(&self, path: &str, error_type: &str, json_body: Bytes) -> Request<Body> {
        let mut req = self.endpoint.request(Method::POST, path, json_body);
        let h = req.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            headers::FUNCTION_ERROR_TYPE,
            sanitize_error_type(error_type),
        );
        req
    }
}

/// The headers of a `/next` reply, read leniently: a missing or unreadable optional
/// header is `None`, never a panic (edge-cases A5–A8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NextHeaders {
    /// `Lambda-Runtime-Aws-Request-Id`; empty when the header was missing.
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms`, when present and a whole number.
    pub deadline_ms: Option<u64>,
    /// `Lambda-Runtime-Invoked-Function-Arn`; empty when missing.
    pub invoked_function_arn: String,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: Option<String>,
    /// `Lambda-Runtime-Client-Context`, raw.
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity`, raw.
    pub cognito_identity: Option<String>,
    /// `Lambda-Runtime-Aws-Tenant-Id`.
    pub tenant_id: Option<String>,
}

impl NextHeaders {
    /// Reads the invocation headers of a `/next` reply.
    pub fn from_response(reply: &ApiResponse) -> Self {
        Self::from_fields(reply.raw_headers())
    }

    /// Reads the invocation headers from (name, value) pairs in one pass; names match in any
    /// case, and a value that is not text counts as missing.
    pub(crate) fn from_fields<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        const NAMES: [&str; 7] = [
            headers::REQUEST_ID,
            headers::DEADLINE_MS,
            headers::INVOKED_FUNCTION_ARN,
            headers::TRACE_ID,
            headers::CLIENT_CONTEXT,
            headers::COGNITO_IDENTITY,
            headers::TENANT_ID,
        ];
        let mut out = NextHeaders::default();
        // A repeated header counts once, by its first value (as Go's `Header.Get` reads).
        let mut seen = [false; NAMES.len()];
        for (name, value) in fields {
            // The name first: most headers are not ours, and their values are never read.
            let Some(slot) = NAMES
                .iter()
                .position(|known| name.eq_ignore_ascii_case(known.as_bytes()))
            else {
                continue;
            };
            let Some(text) = std::str::from_utf8(value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty())
            else {
                continue;
            };
            if std::mem::replace(&mut seen[slot], true) {
                continue;
            }
            match slot {
                0 => out.request_id = text.to_owned(),
                1 => out.deadline_ms = text.parse().ok(),
                2 => out.invoked_function_arn = text.to_owned(),
                3 => out.trace_id = Some(text.to_owned()),
                4 => out.client_context = Some(text.to_owned()),
                5 => out.cognito_identity = Some(text.to_owned()),
                _ => out.tenant_id = Some(text.to_owned()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> RuntimeApi {
        RuntimeApi::new(Endpoint::parse("http://127.0.0.1:9001/pre").unwrap())
    }

    #[test]
    fn requests_use_the_prefix_and_host() {
        let a = api();
        let next = a.next();
        assert_eq!(next.method(), Method::GET);
        assert_eq!(next.uri(), "/pre/2018-06-01/runtime/invocation/next");
        assert_eq!(next.headers()[header::HOST], "127.0.0.1:9001");
        let resp = a
            .response("abc-1", Bytes::from_static(b"{}"), "application/json")
            .unwrap();
        assert_eq!(
            resp.uri(),
            "/pre/2018-06-01/runtime/invocation/abc-1/response"
        );
        let err = a.error("abc-1", "Function.Boom", Bytes::new()).unwrap();
        assert_eq!(err.uri(), "/pre/2018-06-01/runtime/invocation/abc-1/error");
        assert_eq!(err.headers()[headers::FUNCTION_ERROR_TYPE], "Function.Boom");
        assert_eq!(
            a.init_error("Runtime.Init", Bytes::new()).uri(),
            "/pre/2018-06-01/runtime/init/error"
        );
    }

    #[test]
    fn ids_that_could_change_the_path_are_refused() {
        let a = api();
        for id in ["../init/error", "a/b", "a%2f", "x?y", "x#y", "a b", ""] {
            assert!(
                a.response(id, Bytes::new(), "application/json").is_err(),
                "{id:?}"
            );
            assert!(a.error(id, "T", Bytes::new()).is_err(), "{id:?}");
        }
    }

    #[test]
    fn routes_round_trip() {
        assert_eq!(RuntimeRoute::parse(NEXT_PATH), Some(RuntimeRoute::Next));
        assert_eq!(
            RuntimeRoute::parse(INIT_ERROR_PATH),
            Some(RuntimeRoute::InitError)
        );
        assert_eq!(
            RuntimeRoute::parse("/2018-06-01/runtime/invocation/x1/response"),
            Some(RuntimeRoute::Response("x1"))
        );
        assert_eq!(
            RuntimeRoute::parse("/2018-06-01/runtime/invocation/x1/error"),
            Some(RuntimeRoute::Error("x1"))
        );
        assert_eq!(
            RuntimeRoute::parse("/2018-06-01/runtime/invocation/x1"),
            None
        );
        assert_eq!(RuntimeRoute::parse("/2020-01-01/extension/register"), None);
    }

    #[test]
    fn stream_error_trailers_read_back() {
        let json = br#"{"errorType":"Function.Cut","errorMessage":"m"}"#;
        let written = stream_error_trailers("Function.Cut", json);
        let read =
            read_stream_error_trailers(written[0].1.to_str().ok(), written[1].1.to_str().ok());
        assert_eq!(
            read,
            Some(("Function.Cut".to_owned(), Some(Bytes::from_static(json))))
        );
        assert_eq!(
            read_stream_error_trailers(Some("T"), Some("not base64!")),
            Some(("T".to_owned(), None))
        );
        assert_eq!(read_stream_error_trailers(None, Some("e30=")), None);
    }

    #[test]
    fn error_types_are_sanitized() {
        assert_eq!(sanitize_error_type("Function.Ok"), "Function.Ok");
        assert_eq!(sanitize_error_type("bad\r\nHeader: x"), "bad__Header:_x");
        assert_eq!(sanitize_error_type(""), "Runtime.Unknown");
        assert_eq!(sanitize_error_type("é"), "_");
        assert_eq!(
            sanitize_error_type(&"x".repeat(1000)).len(),
            MAX_ERROR_TYPE_LEN
        );
    }

    #[test]
    fn next_headers_are_lenient() {
        let read = |pairs: &[(&str, &[u8])]| {
            NextHeaders::from_fields(pairs.iter().map(|(n, v)| (n.as_bytes(), *v)))
        };
        assert_eq!(read(&[]), NextHeaders::default());
        let mut pairs: Vec<(&str, &[u8])> = vec![
            ("Lambda-Runtime-Aws-Request-Id", b" id-1 "),
            ("lambda-runtime-deadline-ms", b"not-a-number"),
            ("LAMBDA-RUNTIME-TRACE-ID", b"Root=1-2-3"),
            (headers::CLIENT_CONTEXT, b"\xff\xfe"),
            (headers::COGNITO_IDENTITY, b""),
            ("x-unrelated", b"1"),
        ];
        let n = read(&pairs);
        assert_eq!(n.request_id, "id-1");
        assert_eq!(n.deadline_ms, None);
        assert_eq!(n.trace_id.as_deref(), Some("Root=1-2-3"));
        assert_eq!(n.client_context, None);
        assert_eq!(n.cognito_identity, None);
        // A repeated header counts by its first value, usable or not.
        pairs.push((headers::DEADLINE_MS, b"600000"));
        assert_eq!(read(&pairs).deadline_ms, None);
        assert_eq!(
            read(&[(headers::DEADLINE_MS, b"600000")]).deadline_ms,
            Some(600_000)
        );
    }

    #[test]
    fn a_repeated_request_id_counts_by_its_first_value() {
        let n = NextHeaders::from_fields(
            [
                (headers::REQUEST_ID.as_bytes(), &b"first"[..]),
                (b"Lambda-Runtime-Aws-Request-Id", b"second"),
            ]
            .into_iter(),
        );
        assert_eq!(n.request_id, "first");
    }

    #[test]
    fn a_response_head_framed_directly_is_the_one_queue_writes() {
        for endpoint in ["127.0.0.1:9001", "http://[::1]:9000/.rt/fn"] {
            let api = RuntimeApi::new(Endpoint::parse(endpoint).unwrap());
            for content_type in [
                "application/json",
                "text/plain; charset=utf-8",
                "bad\nvalue",
                "text/plain; note=café",
            ] {
                let body = Bytes::from_static(b"{\"a\":1}");
                let mut via_request = BytesMut::new();
                crate::http1::encode_head(
                    &api.response("id-1", body.clone(), content_type).unwrap(),
                    &mut via_request,
                );
                let mut direct = BytesMut::new();
                api.encode_response_head("id-1", content_type, body.len(), &mut direct)
                    .unwrap();
                assert_eq!(direct, via_request, "{endpoint} {content_type:?}");
            }
        }
        let api = RuntimeApi::new(Endpoint::parse("127.0.0.1:9001").unwrap());
        let mut out = BytesMut::new();
        assert!(
            api.encode_response_head("../next", "text/plain", 0, &mut out)
                .is_err()
        );
        assert!(out.is_empty());
    }
}
