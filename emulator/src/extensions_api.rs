//! The Extensions API (`/2020-01-01/extension/…`) and the Telemetry and Logs subscription
//! endpoints, with production's status codes and error types (edge-cases B1–B9, C1–C3).
//! Header checks that need no state are made here; the environment decides the rest.

use http::{HeaderMap, HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use ironlambda_api_client::ExtensionRoute;
use ironlambda_api_client::extension_headers as headers;
use ironlambda_api_client::telemetry::SubscriptionApi;
use ironlambda_api_client::wire::{MAX_EXTENSIONS_API_BODY as MAX_BODY, STATUS_OK_BODY};
use tokio::sync::oneshot;

use crate::calls::{Call, Calls, ErrorPhase, ExtensionCall, Refusal, Reply as Answer, refuse};
use crate::http_util::{Reply, json, read_limited};

fn text(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The `Lambda-Extension-Identifier` header, present and shaped like a UUID (edge-cases B7).
fn identifier(h: &HeaderMap) -> Result<String, Refusal> {
    let id = text(h, headers::IDENTIFIER)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            refuse(
                StatusCode::FORBIDDEN,
                "Extension.MissingExtensionIdentifier",
                "Missing extension identifier",
            )
        })?;
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Extension.InvalidExtensionIdentifier",
            "Invalid extension identifier",
        ));
    }
    Ok(id)
}

/// Sends `call` to the environment and waits for its answer.
async fn ask<T>(
    calls: &Calls,
    call: impl FnOnce(Answer<T>) -> ExtensionCall,
) -> Result<T, Refusal> {
    let stopped = || {
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The environment has stopped",
        )
    };
    let (tx, rx) = oneshot::channel();
    calls
        .send(Call::Extension(call(tx)))
        .await
        .map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())?
}

pub(crate) async fn handle(route: ExtensionRoute, req: Request<Incoming>, calls: &Calls) -> Reply {
    match call(route, req, calls).await {
        Ok(reply) => reply,
        Err((status, body)) => json(status, body.to_json()),
    }
}

async fn call(
    route: ExtensionRoute,
    req: Request<Incoming>,
    calls: &Calls,
) -> Result<Reply, Refusal> {
    if req.method() != route.method() {
        return Err(refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{} is not allowed here", req.method()),
        ));
    }
    let h = req.headers().clone();
    match route {
        ExtensionRoute::Register => {
            let name = text(&h, headers::NAME).unwrap_or_default();
            let account_id = text(&h, headers::ACCEPT_FEATURE)
                .is_some_and(|f| f.split(',').any(|x| x.trim() == "accountId"));
            let body = read_limited(req.into_body(), MAX_BODY).await;
            let registration = ask(calls, |reply| ExtensionCall::Register {
                name,
                body,
                account_id,
                reply,
            })
            .await?;
            let mut reply = json(StatusCode::OK, registration.body);
            if let Ok(v) = HeaderValue::from_str(&registration.id) {
                reply.headers_mut().insert(headers::IDENTIFIER, v);
            }
            Ok(reply)
        }
        ExtensionRoute::Next => {
            let id = identifier(&h)?;
            let event = ask(calls, |reply| ExtensionCall::Next { id, reply }).await?;
            let mut reply = json(StatusCode::OK, event);
            if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
                reply.headers_mut().insert(headers::EVENT_IDENTIFIER, v);
            }
            Ok(reply)
        }
        ExtensionRoute::InitError | ExtensionRoute::ExitError => {
            let id = identifier(&h)?;
            let error_type = text(&h, headers::FUNCTION_ERROR_TYPE)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    refuse(
                        StatusCode::FORBIDDEN,
                        "Extension.MissingHeader",
                        "Missing Lambda-Extension-Function-Error-Type header",
                    )
                })?;
            let phase = if route == ExtensionRoute::InitError {
                ErrorPhase::Init
            } else {
                ErrorPhase::Exit
            };
            let body = read_limited(req.into_body(), MAX_BODY).await;
            ask(calls, |reply| ExtensionCall::Error {
                id,
                phase,
                error_type,
                body,
                reply,
            })
            .await?;
            Ok(json(StatusCode::ACCEPTED, STATUS_OK_BODY))
        }
        ExtensionRoute::Telemetry | ExtensionRoute::Logs => {
            let id = identifier(&h)?;
            let api = if route == ExtensionRoute::Telemetry {
                SubscriptionApi::Telemetry
            } else {
                SubscriptionApi::Logs
            };
            let body = read_limited(req.into_body(), MAX_BODY).await;
            ask(calls, |reply| ExtensionCall::Subscribe {
                id,
                api,
                body,
                reply,
            })
            .await?;
            Ok(json(StatusCode::OK, "\"OK\""))
        }
    }
}
