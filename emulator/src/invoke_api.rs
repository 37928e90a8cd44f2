//! The Invoke API (`POST /2015-03-31/functions/{name}/invocations`), what the AWS CLI, the
//! SDKs with an endpoint override, and RIE's users call. Answers as the real API does:
//! 200 with the payload; 200 with `X-Amz-Function-Error: Unhandled` for function errors,
//! crashes and timeouts; 400 `InvalidRequestContentException` for a body that is not
//! JSON; 413 `RequestEntityTooLargeException` over 6 MB; 202 for `Event` invocations.

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use hyper::body::Incoming;
use ironlambda_api_client::headers;
use ironlambda_api_client::wire::{MAX_ASYNC_INVOKE_PAYLOAD, MAX_INVOKE_PAYLOAD};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::calls::{Invocation, InvokeResult, PostedBody};
use crate::http_util::{Reply, json as json_reply, read_limited};

/// Path prefix of the Invoke API.
pub(crate) const PREFIX: &str = "/2015-03-31/functions/";
/// Largest client context accepted, base64 (protocol.md §1.9).
const MAX_CLIENT_CONTEXT: usize = 3583;

/// What the Invoke API handler needs.
pub(crate) struct InvokeTarget<'a> {
    pub(crate) function_name: &'a str,
    pub(crate) function_arn: String,
    pub(crate) invokes: &'a mpsc::Sender<Invocation>,
}

/// An AWS API error reply: the type in `x-amzn-ErrorType`, `{"Type","message"}` as body.
fn aws_error(status: StatusCode, error_type: &'static str, message: String) -> Reply {
    let kind = if status.is_client_error() {
        "User"
    } else {
        "Service"
    };
    let mut r = json_reply(
        status,
        json!({ "Type": kind, "message": message }).to_string(),
    );
    r.headers_mut().insert(
        headers::AMZN_ERROR_TYPE,
        HeaderValue::from_static(error_type),
    );
    r
}

/// `{name}` may be a name, `function` (RIE's), or a full or partial ARN.
fn names_the_function(requested: &str, target: &InvokeTarget<'_>) -> bool {
    let unqualified = requested
        .rsplit_once(':')
        .map_or(requested, |(head, tail)| {
            // `name:qualifier` or `arn:…:function:name[:qualifier]`
            if tail == "$LATEST" || tail.chars().all(|c| c.is_ascii_digit()) {
                head
            } else {
                requested
            }
        });
    let name = unqualified.rsplit(':').next().unwrap_or(unqualified);
    name == target.function_name || name == "function"
}

pub(crate) async fn handle(req: Request<Incoming>, target: InvokeTarget<'_>) -> Reply {
    let path = req.uri().path().to_owned();
    let Some(name) = path
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix("/invocations"))
    else {
        return aws_error(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("Unknown operation {path}"),
        );
    };
    if req.method() != Method::POST {
        return aws_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnknownOperationException",
            format!("{} is not supported on {path}", req.method()),
        );
    }
    if !names_the_function(name, &target) {
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!("Function not found: {}", name),
        );
    }
    let asynchronous = match header_text(req.headers(), headers::AMZ_INVOCATION_TYPE).as_deref() {
        None | Some("RequestResponse") => false,
        Some("Event") => true,
        Some("DryRun") => {
            let mut r = json_reply(StatusCode::NO_CONTENT, Bytes::new());
            r.headers_mut().remove(header::CONTENT_TYPE);
            return r;
        }
        Some(other) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                format!(
                    "Invalid invocation type {other:?}: expected RequestResponse, Event or DryRun"
                ),
            );
        }
    };
    let client_context = match decode_client_context(req.headers()) {
        Ok(c) => c,
        Err(message) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                message,
            );
        }
    };
    let trace_id =
        header_text(req.headers(), headers::AMZN_TRACE_ID).or_else(|| Some(new_trace_id()));
    let limit = if asynchronous {
        MAX_ASYNC_INVOKE_PAYLOAD
    } else {
        MAX_INVOKE_PAYLOAD
    };
    let body = match read_limited(req.into_body(), limit).await {
        PostedBody::Complete(b) => b,
        PostedBody::TooLarge(n) => {
            let operation = if asynchronous { "asynchronous " } else { "" };
            return aws_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                format!(
                    "{n} byte payload is too large for the {operation}Invoke operation (limit: {limit} bytes)"
                ),
            );
        }
        PostedBody::Truncated => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                "The request body ended early".into(),
            );
        }
    };
    if !body.is_empty() {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                format!("Could not parse request body into json: {e}"),
            );
        }
    }

    let request_id = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = oneshot::channel();
    let job = Invocation {
        request_id: request_id.clone(),
        body,
        client_context,
        trace_id,
        reply: (!asynchronous).then_some(tx),
    };
    if let Err(e) = target.invokes.try_send(job) {
        let message = match e {
            mpsc::error::TrySendError::Full(_) => "Rate exceeded: too many invocations are queued",
            mpsc::error::TrySendError::Closed(_) => "The emulator is shutting down",
        };
        return aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            message.into(),
        );
    }
    let mut reply = if asynchronous {
        let mut r = json_reply(StatusCode::ACCEPTED, Bytes::new());
        r.headers_mut().remove(header::CONTENT_TYPE);
        r
    } else {
        match rx.await {
            Ok(InvokeResult::Success { body, content_type }) => {
                with_type(json_reply(StatusCode::OK, body), content_type)
            }
            Ok(InvokeResult::FunctionError { body, content_type }) => {
                let mut r = with_type(json_reply(StatusCode::OK, body), content_type);
                r.headers_mut().insert(
                    headers::AMZ_FUNCTION_ERROR,
                    HeaderValue::from_static("Unhandled"),
                );
                r
            }
            Err(_) => {
                return aws_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceException",
                    format!(
                        "The emulator stopped before {} finished",
                        target.function_arn
                    ),
                );
            }
        }
    };
    let h = reply.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert(headers::AMZN_REQUEST_ID, v);
    }
    h.insert(
        headers::AMZ_EXECUTED_VERSION,
        HeaderValue::from_static("$LATEST"),
    );
    reply
}

fn with_type(mut r: Reply, content_type: Option<HeaderValue>) -> Reply {
    if let Some(ct) = content_type {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r
}

fn header_text(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// `X-Amz-Client-Context` is base64 on the Invoke API; the runtime gets the decoded JSON.
fn decode_client_context(h: &HeaderMap) -> Result<Option<String>, String> {
    let Some(raw) = header_text(h, headers::AMZ_CLIENT_CONTEXT) else {
        return Ok(None);
    };
    if raw.len() > MAX_CLIENT_CONTEXT {
        return Err(format!(
            "Client context must be at most {MAX_CLIENT_CONTEXT} bytes of base64"
        ));
    }
    let invalid = || "Client context must be a valid Base64-encoded JSON object".to_owned();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .map_err(|_| invalid())?;
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&decoded)
        .map_err(|_| invalid())?;
    String::from_utf8(decoded).map(Some).map_err(|_| invalid())
}

/// A fresh X-Ray trace header: `Root=1-<epoch hex>-<96-bit hex>;Parent=<64-bit hex>;Sampled=0`.
fn new_trace_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{secs:08x}-{};Parent={};Sampled=0",
        &id[..24],
        &id[16..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_and_arns() {
        let (tx, _rx) = mpsc::channel(1);
        let t = InvokeTarget {
            function_name: "hello",
            function_arn: String::new(),
            invokes: &tx,
        };
        for ok in [
            "hello",
            "function",
            "hello:$LATEST",
            "hello:3",
            "arn:aws:lambda:us-east-1:000000000000:function:hello",
        ] {
            assert!(names_the_function(ok, &t), "{ok}");
        }
        for bad in [
            "other",
            "hello2",
            "arn:aws:lambda:us-east-1:000000000000:function:other",
        ] {
            assert!(!names_the_function(bad, &t), "{bad}");
        }
    }

    #[test]
    fn trace_ids_have_the_xray_shape() {
        let t = new_trace_id();
        let parts: Vec<_> = t.split(';').collect();
        assert!(
            parts[0].starts_with("Root=1-") && parts[0].len() == "Root=1-".len() + 8 + 1 + 24,
            "{t}"
        );
        assert!(
            parts[1].starts_with("Parent=") && parts[1].len() == "Parent=".len() + 16,
            "{t}"
        );
        assert_eq!(parts[2], "Sampled=0");
    }
}
