//! The emulator's Runtime API answers as production does (protocol.md §1, edge-cases A11–A15,
//! A19). The test plays the runtime itself with the api-client, while the emulator's
//! launched process stays idle.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use ironlambda_api_client::{ApiError, Client, Endpoint, NextHeaders, RuntimeApi};
use ironlambda_emulator::Emulator;
use ironlambda_integration_tests::{idle_emulator, invoke_in_background};
use serde_json::json;

struct Runtime {
    api: RuntimeApi,
    client: Client,
}

impl Runtime {
    fn new(emu: &Emulator) -> Self {
        let endpoint = Endpoint::parse(&emu.addr().to_string()).unwrap();
        Runtime {
            api: RuntimeApi::new(endpoint.clone()),
            client: Client::new(&endpoint),
        }
    }

    async fn next(&mut self) -> (NextHeaders, Bytes) {
        let r = self.client.send(self.api.next()).await.unwrap();
        (NextHeaders::from_response(&r), r.body)
    }

    async fn respond(&mut self, id: &str, body: impl Into<Bytes>) -> Result<Bytes, ApiError> {
        let req = self
            .api
            .response(id, body.into(), "application/json")
            .unwrap();
        self.client.send(req).await.map(|r| r.body)
    }
}

fn error_type(e: &ApiError) -> &str {
    &e.body().unwrap().error_type
}

#[tokio::test]
async fn runtime_api_status_codes_match_production() {
    let emu = idle_emulator().await;
    let mut rt = Runtime::new(&emu);

    // Invocation A: the event and its headers.
    let a = invoke_in_background(&emu, json!({"n": 1}).to_string());
    let (headers, body) = rt.next().await;
    assert_eq!(body, r#"{"n":1}"#);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let deadline = headers.deadline_ms.expect("an epoch-ms deadline");
    assert!(
        deadline > now_ms && deadline <= now_ms + 61_000,
        "{deadline} vs {now_ms}"
    );
    assert_eq!(
        headers.invoked_function_arn,
        "arn:aws:lambda:us-east-1:000000000000:function:test-function"
    );
    let id = headers.request_id.clone();

    // Unknown id: 400 InvalidRequestID.
    let e = rt.respond("not-the-current-id", "{}").await.unwrap_err();
    assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
    assert_eq!(error_type(&e), "InvalidRequestID");

    // The real answer: 202 {"status":"OK"}, and the caller gets it.
    assert_eq!(
        rt.respond(&id, r#"{"ok":true}"#).await.unwrap(),
        r#"{"status":"OK"}"#
    );
    let answer = a.await.unwrap();
    assert_eq!(answer.json().unwrap(), json!({"ok": true}));
    assert_eq!(answer.request_id(), Some(id.as_str()));

    // A second answer for the same id: 403 InvalidStateTransition, for /response and /error.
    let e = rt.respond(&id, "{}").await.unwrap_err();
    assert!(matches!(e, ApiError::Forbidden(_)), "{e:?}");
    assert_eq!(error_type(&e), "InvalidStateTransition");
    let e = rt
        .client
        .send(rt.api.error(&id, "Function.Late", Bytes::new()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error_type(&e), "InvalidStateTransition");
    // Init is over: /init/error is refused.
    let e = rt
        .client
        .send(rt.api.init_error("Runtime.Late", Bytes::new()))
        .await
        .unwrap_err();
    assert_eq!(error_type(&e), "InvalidStateTransition");

    // Invocation B: a bad response mode is refused, an oversized body gets 413 and the
    // caller gets Function.ResponseSizeTooLarge.
    let b = invoke_in_background(&emu, json!({"n": 2}).to_string());
    let (headers, _) = rt.next().await;
    let mut req = rt
        .api
        .response(
            &headers.request_id,
            Bytes::from_static(b"{}"),
            "application/json",
        )
        .unwrap();
    req.headers_mut().insert(
        "lambda-runtime-function-response-mode",
        HeaderValue::from_static("buffered"),
    );
    let e = rt.client.send(req).await.unwrap_err();
    assert_eq!(error_type(&e), "InvalidFunctionResponseMode");
    let e = rt
        .respond(&headers.request_id, vec![b'x'; 6_291_557])
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::PayloadTooLarge(_)), "{e:?}");
    assert_eq!(error_type(&e), "RequestEntityTooLarge");
    let answer = b.await.unwrap();
    assert_eq!(answer.function_error(), Some("Unhandled"));
    assert_eq!(
        answer.json().unwrap()["errorType"],
        "Function.ResponseSizeTooLarge"
    );

    // Invocation C: /error without a body; Lambda builds the error from the header.
    let c = invoke_in_background(&emu, json!({"n": 3}).to_string());
    let (headers, _) = rt.next().await;
    let req = rt
        .api
        .error(&headers.request_id, "Function.NoBody", Bytes::new())
        .unwrap();
    assert_eq!(
        rt.client.send(req).await.unwrap().status,
        StatusCode::ACCEPTED
    );
    let answer = c.await.unwrap();
    assert_eq!(answer.function_error(), Some("Unhandled"));
    assert_eq!(answer.json().unwrap()["errorType"], "Function.NoBody");

    emu.shutdown().await;
}

#[tokio::test]
async fn a_next_before_answering_gets_the_same_event_again() {
    let emu = idle_emulator().await;
    let mut rt = Runtime::new(&emu);
    let a = invoke_in_background(&emu, json!({"n": 1}).to_string());
    let (first, _) = rt.next().await;
    let (again, body) = rt.next().await;
    assert_eq!(first.request_id, again.request_id);
    assert_eq!(body, r#"{"n":1}"#);
    rt.respond(&first.request_id, "1").await.unwrap();
    assert_eq!(a.await.unwrap().body, "1");
    emu.shutdown().await;
}
