//! The Runtime API (`/2018-06-01/runtime/…`) as production Lambda answers it: 202
//! `{"status":"OK"}`, 400 `InvalidRequestID`, 403 `InvalidStateTransition`, 413
//! `RequestEntityTooLarge` (protocol.md §1). The decisions are the environment's; this
//! module only translates between HTTP and its messages.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use ironlambda_api_client::headers;
use ironlambda_api_client::wire::{
    ApiErrorBody, MAX_RESPONSE_PAYLOAD, MAX_STREAMED_RESPONSE, STATUS_OK_BODY, invalid_request_id,
    invalid_state_transition, invoke_timeout, request_entity_too_large,
};
use ironlambda_api_client::{RuntimeRoute, read_stream_error_trailers};
use tokio::sync::{mpsc, oneshot};

use crate::calls::{Call, Calls, Event, Refusal, RuntimeCall, StreamedBody};
use crate::faults::{Faults, Kind, Plan, corrupted};
use crate::http_util::{Reply, json, read_limited};

/// A fault asked for the connection to be closed without an answer.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// Serves one Runtime API request, with the injected `faults` (none in normal use).
pub(crate) async fn handle(
    route: RuntimeRoute<'_>,
    req: Request<Incoming>,
    calls: &Calls,
    faults: &Faults,
) -> Result<Reply, Dropped> {
    if route == RuntimeRoute::Next {
        let plan = faults.plan(Kind::Next);
        delay(plan.delay).await;
        if plan.drop {
            return Err(Dropped);
        }
        if let Some(status) = plan.status {
            return Ok(with_close(injected(status), plan.close));
        }
        let reply = serve(route, req, calls, faults).await;
        return Ok(with_close(reply, plan.close));
    }
    let reply = serve(route, req, calls, faults).await;
    // Answers to results: the result has reached the environment (the caller gets it);
    // only what the runtime hears is changed.
    let plan = faults.plan(Kind::Answer);
    delay(plan.delay).await;
    let reply = match plan.status {
        Some(status) => injected(status),
        None => reply,
    };
    Ok(with_close(reply, plan.close))
}

async fn serve(
    route: RuntimeRoute<'_>,
    req: Request<Incoming>,
    calls: &Calls,
    faults: &Faults,
) -> Reply {
    if req.method() != route.method() {
        return refusal((
            StatusCode::METHOD_NOT_ALLOWED,
            ApiErrorBody::new(
                "MethodNotAllowed",
                format!("{} is not allowed here", req.method()),
            ),
        ));
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let error_type = text(req.headers(), headers::FUNCTION_ERROR_TYPE);
    if route == RuntimeRoute::Next {
        let (tx, rx) = oneshot::channel();
        if calls
            .send(Call::Runtime(RuntimeCall::Next(tx)))
            .await
            .is_err()
        {
            return stopped();
        }
        return match rx.await {
            Ok(Ok(event)) => render_event(&event, &faults.plan(Kind::Event)),
            Ok(Err(r)) => refusal(r),
            Err(_) => stopped(),
        };
    }
    if let RuntimeRoute::Response(id) = route {
        if let Some(mode) = req.headers().get(headers::FUNCTION_RESPONSE_MODE) {
            // `streaming` is the only accepted value (edge-cases A15).
            if mode != "streaming" {
                return refusal((
                    StatusCode::BAD_REQUEST,
                    ApiErrorBody::new(
                        "InvalidFunctionResponseMode",
                        "Invalid function response mode",
                    ),
                ));
            }
            return stream_response(id.to_owned(), req, calls).await;
        }
    }
    let body = read_limited(req.into_body(), MAX_RESPONSE_PAYLOAD).await;
    let (tx, rx) = oneshot::channel();
    let call = match route {
        RuntimeRoute::Response(id) => RuntimeCall::Response {
            id: id.to_owned(),
            body,
            content_type,
            reply: tx,
        },
        RuntimeRoute::Error(id) => RuntimeCall::Error {
            id: id.to_owned(),
            body,
            content_type,
            error_type,
            reply: tx,
        },
        RuntimeRoute::InitError => RuntimeCall::InitError {
            body,
            content_type,
            error_type,
            reply: tx,
        },
        RuntimeRoute::Next => unreachable!("handled above"),
    };
    if calls.send(Call::Runtime(call)).await.is_err() {
        return stopped();
    }
    match rx.await {
        Ok(Ok(())) => json(StatusCode::ACCEPTED, STATUS_OK_BODY),
        Ok(Err(r)) => refusal(r),
        Err(_) => stopped(),
    }
}

/// A streamed `/response` (protocol.md §1.3): the environment is told it began (and
/// answers the caller with the stream), the body's chunks are passed on as they arrive,
/// and how it ended (trailers, limit, truncation) goes to the environment, which decides
/// what the caller and the runtime get. Nothing holds more than a chunk or two: when the
/// caller reads slowly, the channel fills and this stops reading from the runtime.
async fn stream_response(id: String, req: Request<Incoming>, calls: &Calls) -> Reply {
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let (tx, rx) = oneshot::channel();
    let start = RuntimeCall::StreamStart {
        id: id.clone(),
        content_type,
        reply: tx,
    };
    if calls.send(Call::Runtime(start)).await.is_err() {
        return stopped();
    }
    let feed = match rx.await {
        Ok(Ok(feed)) => feed,
        Ok(Err(r)) => return refusal(r),
        Err(_) => return stopped(),
    };
    let body = pump(req.into_body(), feed).await;
    let (tx, rx) = oneshot::channel();
    let end = RuntimeCall::StreamEnd {
        id,
        body,
        reply: tx,
    };
    if calls.send(Call::Runtime(end)).await.is_err() {
        return stopped();
    }
    match rx.await {
        Ok(Ok(())) => json(StatusCode::ACCEPTED, STATUS_OK_BODY),
        Ok(Err(r)) => refusal(r),
        Err(_) => stopped(),
    }
}

/// Passes the body's chunks to `feed` until it ends, and reads its trailers. A caller that
/// went away does not stop the function (edge-cases A28): the rest is read and dropped.
async fn pump(mut body: Incoming, feed: mpsc::Sender<Bytes>) -> StreamedBody {
    let mut total = 0usize;
    let mut feed = Some(feed);
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(_) => return StreamedBody::Truncated,
        };
        let frame = match frame.into_data() {
            Ok(data) if data.is_empty() => continue,
            Ok(data) => {
                total = total.saturating_add(data.len());
                if total > MAX_STREAMED_RESPONSE {
                    return StreamedBody::TooLarge(total);
                }
                if let Some(f) = &feed {
                    if f.send(data).await.is_err() {
                        feed = None;
                    }
                }
                continue;
            }
            Err(frame) => frame,
        };
        if let Ok(trailers) = frame.into_trailers() {
            let read = read_stream_error_trailers(
                text(&trailers, headers::FUNCTION_ERROR_TYPE).as_deref(),
                text(&trailers, headers::FUNCTION_ERROR_BODY).as_deref(),
            );
            if let Some((error_type, body)) = read {
                return StreamedBody::ErrorTrailers { error_type, body };
            }
        }
    }
    StreamedBody::Complete
}

fn text(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn render_event(event: &Event, plan: &Plan) -> Reply {
    let body = if plan.truncate {
        event.body.slice(..event.body.len() / 2)
    } else {
        event.body.clone()
    };
    let mut r = json(StatusCode::OK, body);
    let h = r.headers_mut();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put(headers::REQUEST_ID, &event.request_id);
    put(headers::DEADLINE_MS, &event.deadline_ms.to_string());
    put(headers::INVOKED_FUNCTION_ARN, &event.invoked_function_arn);
    if let Some(t) = &event.trace_id {
        put(headers::TRACE_ID, t);
    }
    if let Some(c) = &event.client_context {
        put(headers::CLIENT_CONTEXT, c);
    }
    for name in &plan.omit {
        h.remove(*name);
    }
    for name in &plan.corrupt {
        h.insert(*name, HeaderValue::from_static(corrupted(name)));
    }
    r
}

/// Waits out an injected delay. No delay costs nothing: even a zero `sleep` waits for the
/// next tick of tokio's millisecond timer, which would add about a millisecond to every
/// answer.
async fn delay(d: std::time::Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// The answer an injected status gives, with the body Lambda sends with it.
fn injected(status: u16) -> Reply {
    let body = match status {
        400 => invalid_request_id(),
        403 => invalid_state_transition("Running", "Ready"),
        410 => invoke_timeout(),
        413 => request_entity_too_large(),
        _ => ApiErrorBody::new("InternalServerError", "Injected fault"),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, body.to_json())
}

/// With `close`, the connection is closed after this answer (no keep-alive).
fn with_close(mut reply: Reply, close: bool) -> Reply {
    if close {
        reply
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    reply
}

fn refusal((status, body): Refusal) -> Reply {
    json(status, body.to_json())
}

fn stopped() -> Reply {
    refusal((
        StatusCode::INTERNAL_SERVER_ERROR,
        ApiErrorBody::new("InternalServerError", "The environment has stopped"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    /// Without an injected delay, answers wait for nothing: not even a timer tick, which
    /// would add a millisecond to every Runtime API answer.
    #[tokio::test]
    async fn no_delay_is_ready_at_once() {
        let mut none = std::pin::pin!(delay(std::time::Duration::ZERO));
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(none.as_mut().poll(&mut cx).is_ready());
        let mut some = std::pin::pin!(delay(std::time::Duration::from_millis(50)));
        assert!(some.as_mut().poll(&mut cx).is_pending());
    }
}
