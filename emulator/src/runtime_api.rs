//! The Runtime API (`/2018-06-01/runtime/…`) as production Lambda answers it: 202
//! `{"status":"OK"}`, 400 `InvalidRequestID`, 403 `InvalidStateTransition`, 413
//! `RequestEntityTooLarge` (protocol.md §1). The decisions are the environment's; this
//! module only translates between HTTP and its messages.

use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use hyper::body::Incoming;
use ironlambda_api_client::RuntimeRoute;
use ironlambda_api_client::headers;
use ironlambda_api_client::wire::{ApiErrorBody, MAX_RESPONSE_PAYLOAD, STATUS_OK_BODY};
use tokio::sync::{mpsc, oneshot};

use crate::calls::{Call, Event, Refusal, RuntimeCall};
use crate::http_util::{Reply, json, read_limited};

pub(crate) async fn handle(
    route: RuntimeRoute<'_>,
    req: Request<Incoming>,
    calls: &mpsc::Sender<Call>,
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
            Ok(Ok(event)) => render_event(&event),
            Ok(Err(r)) => refusal(r),
            Err(_) => stopped(),
        };
    }
    if let RuntimeRoute::Response(_) = route {
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

fn text(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn render_event(event: &Event) -> Reply {
    let mut r = json(StatusCode::OK, event.body.clone());
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
    r
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
