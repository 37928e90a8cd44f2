//! The Invoke API, what the AWS CLI, the SDKs with an endpoint override, and RIE's users
//! call:
//! - `POST /2015-03-31/functions/{name}/invocations` (Invoke): 200 with the payload; 200
//!   with `X-Amz-Function-Error: Unhandled` for function errors, crashes and timeouts; 400
//!   `InvalidRequestContentException` for a body that is not JSON; 413
//!   `RequestEntityTooLargeException` over 6 MB; 202 for `Event` invocations. A streamed
//!   response is collected and cut at the 6 MB buffered limit (protocol.md §1.3).
//! - `POST /2021-11-15/functions/{name}/response-streaming-invocations`
//!   (InvokeWithResponseStream): 200 with an `application/vnd.amazon.eventstream` body,
//!   a `PayloadChunk` event per chunk as it arrives, then `InvokeComplete` (with
//!   `ErrorCode` = the errorType and `ErrorDetails` = the errorMessage when the function
//!   failed). A buffered response goes out as one chunk.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use ironlambda_api_client::headers;
use ironlambda_api_client::wire::{
    ErrorRequest, MAX_ASYNC_INVOKE_PAYLOAD, MAX_INVOKE_PAYLOAD, MAX_RESPONSE_PAYLOAD,
};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::calls::{
    Following, Invocation, InvokeResult, Piece, PostedBody, ResponseStream, StreamEnd,
    error_type_of,
};
use crate::config::FunctionConfig;
use crate::eventstream::{self, InvokeComplete};
use crate::function_name::{self, FunctionRef};
use crate::http_util::{Reply, json as json_reply, read_limited};
use crate::logs::Logs;

/// Path prefix of the Invoke API.
pub(crate) const PREFIX: &str = "/2015-03-31/functions/";
/// Path prefix of InvokeWithResponseStream.
pub(crate) const STREAMING_PREFIX: &str = "/2021-11-15/functions/";
/// Largest client context accepted, base64 (protocol.md §1.9).
const MAX_CLIENT_CONTEXT: usize = 3583;
/// The content type of InvokeWithResponseStream replies.
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";
/// How much longer than the function timeout a `LogType: Tail` waits for the REPORT line
/// (the post-invoke phase and the shutdown after a timeout come after the timeout).
const TAIL_GRACE: Duration = Duration::from_secs(3);

/// Which operation a request path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Invoke,
    InvokeWithResponseStream,
}

/// The function name and operation of an Invoke API path.
fn parse_path(path: &str) -> Option<(&str, Operation)> {
    if let Some(name) = path
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix("/invocations"))
    {
        return Some((name, Operation::Invoke));
    }
    path.strip_prefix(STREAMING_PREFIX)
        .and_then(|rest| rest.strip_suffix("/response-streaming-invocations"))
        .map(|name| (name, Operation::InvokeWithResponseStream))
}

/// A function the Invoke API serves.
pub(crate) struct InvokeTarget {
    pub(crate) config: Arc<FunctionConfig>,
    /// The queue in front of the function's environments.
    pub(crate) invokes: mpsc::Sender<Invocation>,
    /// Where `LogType: Tail` reads the invocation's log.
    pub(crate) logs: Logs,
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

/// Whether `requested` names function `function_name`, unqualified or at `$LATEST` or a
/// version (protocol.md §1.10).
fn names_the_function(requested: &FunctionRef, function_name: &str) -> bool {
    requested.name == function_name && requested.is_latest_or_version()
}

/// The function `requested` names among `targets`; `function` (the name RIE's users
/// invoke) names the first.
fn find<'a>(requested: &FunctionRef, targets: &'a [InvokeTarget]) -> Option<&'a InvokeTarget> {
    targets
        .iter()
        .find(|t| names_the_function(requested, &t.config.name))
        .or_else(|| {
            let first = targets.first()?;
            (requested.name == "function" && requested.is_latest_or_version()).then_some(first)
        })
}

pub(crate) async fn handle(req: Request<Incoming>, targets: &[InvokeTarget]) -> Reply {
    let path = req.uri().path().to_owned();
    let Some((name, operation)) = parse_path(&path) else {
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
    let requested = match function_name::parse(name) {
        Ok(f) => f,
        Err(message) => {
            return aws_error(StatusCode::BAD_REQUEST, "ValidationException", message);
        }
    };
    let Some(target) = find(&requested, targets) else {
        let qualifier = requested
            .qualifier
            .as_deref()
            .map(|q| format!(":{q}"))
            .unwrap_or_default();
        // The ARN the caller meant: ours, with their name and qualifier.
        let arn = targets.first().map(|t| t.config.arn()).unwrap_or_default();
        let account_prefix = arn.rsplit_once(':').map_or("", |(prefix, _)| prefix);
        return aws_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            format!(
                "Function not found: {account_prefix}:{}{qualifier}",
                requested.name
            ),
        );
    };
    let asynchronous = match header_text(req.headers(), headers::AMZ_INVOCATION_TYPE).as_deref() {
        None | Some("RequestResponse") => false,
        Some("Event") if operation == Operation::Invoke => true,
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
    let tail = match header_text(req.headers(), headers::AMZ_LOG_TYPE).as_deref() {
        None | Some("None") => false,
        Some("Tail") if !asynchronous => true,
        Some(other) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                format!(
                    "Invalid log type {other:?}: expected None, or Tail for synchronous invocations"
                ),
            );
        }
    };
    let trace_id =
        header_text(req.headers(), headers::AMZN_TRACE_ID).or_else(|| Some(new_trace_id()));
    // A caller's own request id is honoured, as Lambda Managed Instances do (edge-cases
    // D7), once it is safe to put in a Runtime API path.
    let request_id = match header_text(req.headers(), headers::AMZN_REQUEST_ID) {
        None => uuid::Uuid::new_v4().to_string(),
        Some(id) => match ironlambda_api_client::validate_request_id(&id) {
            Ok(()) => id,
            Err(e) => {
                return aws_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    format!("X-Amzn-RequestId: {e}"),
                );
            }
        },
    };
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
        let Ok(result) = rx.await else {
            return aws_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceException",
                format!(
                    "The emulator stopped before {} finished",
                    target.config.arn()
                ),
            );
        };
        // LogType: Tail waits for the REPORT line, as Lambda's tail includes it.
        let log_limit = target.config.timeout + TAIL_GRACE;
        match operation {
            Operation::Invoke => {
                let mut reply = buffered_reply(result).await;
                if tail {
                    let log = target.logs.tail(&request_id, log_limit).await;
                    if let Some(v) = log.and_then(|l| HeaderValue::from_str(&l).ok()) {
                        reply.headers_mut().insert(headers::AMZ_LOG_RESULT, v);
                    }
                }
                reply
            }
            Operation::InvokeWithResponseStream => {
                let tail = tail.then(|| (target.logs.clone(), request_id.clone(), log_limit));
                event_stream_reply(result, tail)
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

/// The Invoke reply: the payload, or the error with `X-Amz-Function-Error: Unhandled`.
async fn buffered_reply(result: InvokeResult) -> Reply {
    let result = match result {
        InvokeResult::Streaming(stream) => collect(stream).await,
        other => other,
    };
    match result {
        InvokeResult::Success { body, content_type } => {
            with_type(json_reply(StatusCode::OK, body), content_type)
        }
        InvokeResult::FunctionError { body, content_type } => {
            let mut r = with_type(json_reply(StatusCode::OK, body), content_type);
            r.headers_mut().insert(
                headers::AMZ_FUNCTION_ERROR,
                HeaderValue::from_static("Unhandled"),
            );
            r
        }
        InvokeResult::Streaming(_) => unreachable!("collected above"),
    }
}

/// A streamed response answered buffered: its bytes up to the 6 MB buffered limit (the
/// rest is read and dropped, so the function is never held up), then how it ended.
async fn collect(stream: ResponseStream) -> InvokeResult {
    let ResponseStream {
        content_type,
        mut chunks,
        mut end,
    } = stream;
    let mut body = BytesMut::new();
    let ending = loop {
        tokio::select! {
            biased;
            chunk = chunks.recv() => match chunk {
                Some(chunk) => {
                    let room = MAX_RESPONSE_PAYLOAD - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                None => break (&mut end).await,
            },
            ending = &mut end => break ending,
        }
    };
    match ending {
        Ok(StreamEnd::Complete) => InvokeResult::Success {
            body: body.freeze(),
            content_type,
        },
        Ok(StreamEnd::Failed { body, .. }) => InvokeResult::FunctionError {
            body,
            content_type: Some(HeaderValue::from_static("application/json")),
        },
        Err(_) => InvokeResult::platform_error(
            "ServiceException",
            "The emulator stopped before the response stream ended".into(),
        ),
    }
}

/// The InvokeWithResponseStream reply: an event stream that follows the function's. With
/// `tail`, `InvokeComplete` carries the invocation's `LogResult`.
fn event_stream_reply(result: InvokeResult, tail: Option<(Logs, String, Duration)>) -> Reply {
    let stream = match result {
        InvokeResult::Streaming(stream) => stream,
        // A buffered response is sent as a single chunk.
        InvokeResult::Success { body, content_type } => {
            ready_stream(Some(body), content_type, StreamEnd::Complete)
        }
        InvokeResult::FunctionError { body, .. } => {
            let error_type = error_type_of(&body).unwrap_or_else(|| "Unhandled".to_owned());
            ready_stream(None, None, StreamEnd::Failed { error_type, body })
        }
    };
    let (done_tx, done) = oneshot::channel();
    let ending = stream.end;
    // How the stream ended, and then (for Tail) the log up to the REPORT line.
    tokio::spawn(async move {
        let ending = ending.await.ok();
        let log_result = match (&ending, tail) {
            (Some(_), Some((logs, request_id, limit))) => logs.tail(&request_id, limit).await,
            _ => None,
        };
        let _ = done_tx.send(complete(ending, log_result));
    });
    let mut r = Response::new(EventStreamBody(Following::new(stream.chunks, done)).boxed_unsync());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    r
}

/// A stream that has already ended: at most one chunk, and its ending.
fn ready_stream(
    chunk: Option<Bytes>,
    content_type: Option<HeaderValue>,
    ending: StreamEnd,
) -> ResponseStream {
    let (tx, chunks) = mpsc::channel(1);
    if let Some(chunk) = chunk.filter(|c| !c.is_empty()) {
        let _ = tx.try_send(chunk);
    }
    let (end_tx, end) = oneshot::channel();
    let _ = end_tx.send(ending);
    ResponseStream {
        content_type,
        chunks,
        end,
    }
}

/// An event-stream body: a `PayloadChunk` for each chunk as it arrives, then the
/// `InvokeComplete` that says how the stream ended. hyper asks for the next frame only
/// once the caller has taken the last, so a slow caller slows the function down instead
/// of filling memory.
struct EventStreamBody(Following<InvokeComplete>);

impl Body for EventStreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_piece(cx).map(|piece| {
            let data = match piece? {
                Piece::Chunk(data) => eventstream::payload_chunk(&data),
                Piece::Ended(ending) => {
                    eventstream::invoke_complete(&ending.unwrap_or_else(|_| complete(None, None)))
                }
            };
            Some(Ok(Frame::data(data)))
        })
    }
}

/// The `InvokeComplete` for how a stream ended (`None`: the emulator stopped first).
fn complete(ending: Option<StreamEnd>, log_result: Option<String>) -> InvokeComplete {
    match ending {
        Some(StreamEnd::Complete) => InvokeComplete {
            log_result,
            ..InvokeComplete::default()
        },
        Some(StreamEnd::Failed { error_type, body }) => {
            let details = serde_json::from_slice::<ErrorRequest>(&body)
                .map(|e| e.error_message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            InvokeComplete {
                error_code: Some(error_type),
                error_details: Some(details),
                log_result,
            }
        }
        None => InvokeComplete {
            error_code: Some("ServiceException".into()),
            error_details: Some("The emulator stopped before the stream ended".into()),
            log_result: None,
        },
    }
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
pub(crate) fn decode_client_context(h: &HeaderMap) -> Result<Option<String>, String> {
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
pub(crate) fn new_trace_id() -> String {
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
        let names = |raw: &str| names_the_function(&function_name::parse(raw).unwrap(), "hello");
        for ok in [
            "hello",
            "hello:$LATEST",
            "hello:3",
            "arn:aws:lambda:us-east-1:000000000000:function:hello",
            "000000000000:function:hello:$LATEST",
        ] {
            assert!(names(ok), "{ok}");
        }
        for other in [
            "other",
            "function",
            "hello2",
            "hello:live",
            "arn:aws:lambda:us-east-1:000000000000:function:other",
        ] {
            assert!(!names(other), "{other}");
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
