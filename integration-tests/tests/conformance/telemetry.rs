//! edge-cases.md §C: the Telemetry and Logs APIs. The emulator's answers are checked by a
//! test playing the extension; ironlambda-extension's subscription and listener with the
//! real `test-extension` process against a scripted Extensions API.

use std::process::Child;
use std::sync::mpsc;

use http::StatusCode;
use ironlambda_api_client::telemetry::{Destination, TelemetrySubscription, TelemetryType};
use ironlambda_integration_tests::scripted::{Act, Request, reply, scripted_api, start_function};
use ironlambda_integration_tests::{PATIENCE, idle_emulator};

use crate::{Extensions, forbidden, refusal};

/// `test-extension`, subscribed to telemetry, against an Extensions API that answers its
/// subscription with `answer`. Returns the process, the subscription request, and a
/// receiver told when the extension went on to `/event/next` (its init went through).
fn subscribing_extension(answer: Vec<u8>) -> (Child, Request, mpsc::Receiver<()>) {
    let (subscribed, subscription) = mpsc::channel();
    let (tx, next) = mpsc::channel();
    let port = scripted_api(move |req| {
        let path = req.path();
        if path == "/2020-01-01/extension/register" {
            return Act::Reply(reply(
                "200 OK",
                &[(
                    "Lambda-Extension-Identifier",
                    "5a5e7f3c-1b2d-4c3e-9f00-000000000002",
                )],
                r#"{"functionName":"f","functionVersion":"$LATEST","handler":"bootstrap"}"#,
            ));
        }
        if path.ends_with("/telemetry") || path.ends_with("/logs") {
            let _ = subscribed.send(req.clone());
            return Act::Reply(answer.clone());
        }
        if path == "/2020-01-01/extension/event/next" {
            let _ = tx.send(());
        }
        Act::Hold
    });
    let extension = start_function(
        "test-extension",
        &format!("127.0.0.1:{port}"),
        &[("EXT_SUBSCRIBE", "telemetry")],
    );
    let request = subscription
        .recv_timeout(PATIENCE)
        .expect("the extension subscribed");
    (extension, request, next)
}

fn end(mut extension: Child) {
    let _ = extension.kill();
    let _ = extension.wait();
}

/// Lambda answers 200 `"OK"`, the Telemetry API emulator 200 with no body, RIE 202
/// "NotSupported": the extension goes on from each.
#[test]
fn c1_a_subscription_answered_200_with_or_without_a_body_or_202_not_supported_is_accepted() {
    for answer in [
        reply("200 OK", &[], "\"OK\""),
        reply("200 OK", &[], ""),
        reply(
            "202 Accepted",
            &[],
            r#"{"errorType":"Telemetry.NotSupported","errorMessage":"Telemetry API is not supported"}"#,
        ),
    ] {
        let shown = String::from_utf8_lossy(&answer).into_owned();
        let (extension, _, next) = subscribing_extension(answer);
        let went_on = next.recv_timeout(PATIENCE).is_ok();
        end(extension);
        assert!(went_on, "the extension stopped after: {shown}");
    }
}

#[tokio::test]
async fn c2_a_subscription_after_init_is_refused_subscription_closed() {
    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    let id = ext.registered_for("late-subscriber", &[]).await;
    let (rt, invocation) = ext.end_init(&emu, id.clone()).await;
    let subscription = sandbox_subscription("http://sandbox.localdomain:9/");
    let e = ext
        .send(ext.api.subscribe_telemetry(&id, &subscription))
        .await
        .unwrap_err();
    assert_eq!(refusal(e), forbidden("Telemetry.SubscriptionClosed"));
    let e = ext
        .send(ext.api.subscribe_logs(&id, &subscription))
        .await
        .unwrap_err();
    assert_eq!(refusal(e), forbidden("Logs.SubscriptionClosed"));
    rt.answer_and_release(emu, invocation).await;
}

fn sandbox_subscription(uri: &str) -> TelemetrySubscription {
    TelemetrySubscription {
        schema_version: "2022-12-13".into(),
        types: vec![TelemetryType::Platform],
        buffering: Default::default(),
        destination: Destination::Http { uri: uri.into() },
    }
}

/// ironlambda-extension subscribes through the Telemetry API only; the emulator refuses an
/// extension that tries both.
#[tokio::test]
async fn c3_the_telemetry_api_is_used_and_subscribing_to_both_apis_is_refused() {
    let (extension, subscription, _) = subscribing_extension(reply("200 OK", &[], "\"OK\""));
    end(extension);
    assert_eq!(subscription.path(), "/2022-07-01/telemetry");

    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    let id = ext.registered("both").await;
    let subscription = sandbox_subscription("http://sandbox.localdomain:9/");
    ext.send(ext.api.subscribe_telemetry(&id, &subscription))
        .await
        .unwrap();
    let e = ext
        .send(ext.api.subscribe_logs(&id, &subscription))
        .await
        .unwrap_err();
    assert_eq!(refusal(e), forbidden("Logs.SubscriptionConflict"));
    emu.shutdown().await;
}

/// The listener takes a batch twice the largest `maxBytes` (1 MiB) at once, and refuses
/// one too big to be a batch instead of holding it.
#[tokio::test]
async fn c4_the_listener_takes_batches_larger_than_max_bytes_and_bounds_the_rest() {
    let (extension, subscription, _) = subscribing_extension(reply("200 OK", &[], "\"OK\""));
    let body: serde_json::Value = serde_json::from_slice(&subscription.body).unwrap();
    let uri = body["destination"]["URI"].as_str().unwrap().to_owned();
    let port: u16 = uri
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {uri}"));
    let line = "x".repeat(1000);
    let batch_of = |bytes: usize| {
        let record =
            serde_json::json!({"time": "2026-12-01T00:00:00Z", "type": "function", "record": line});
        let one = record.to_string().len() + 1;
        let records: Vec<_> = (0..bytes / one).map(|_| record.clone()).collect();
        serde_json::to_vec(&records).unwrap()
    };
    let post = |body: Vec<u8>| async move {
        let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: sandbox.localdomain:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        sock.write_all(head.as_bytes()).await.unwrap();
        // A listener that refuses early may close before the whole body is written.
        let _ = sock.write_all(&body).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, sock.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    let answer = post(batch_of(2 * 1024 * 1024)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = post(batch_of(64 * 1024 * 1024)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    end(extension);
}

/// The extension names `sandbox.localdomain` as its destination, and the emulator accepts
/// only that host (or `sandbox`), as Lambda does.
#[tokio::test]
async fn c5_destinations_are_at_sandbox_localdomain() {
    let (extension, subscription, _) = subscribing_extension(reply("200 OK", &[], "\"OK\""));
    end(extension);
    let body: serde_json::Value = serde_json::from_slice(&subscription.body).unwrap();
    let uri = body["destination"]["URI"].as_str().unwrap();
    assert!(uri.starts_with("http://sandbox.localdomain:"), "{uri}");

    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    for (n, (uri, accepted)) in [
        ("http://example.com:9/", false),
        ("http://127.0.0.1:9/", false),
        ("http://sandbox:9/", true),
        ("http://sandbox.localdomain:9/", true),
    ]
    .into_iter()
    .enumerate()
    {
        let id = ext.registered(&format!("listener-{n}")).await;
        let answer = ext
            .send(ext.api.subscribe_telemetry(&id, &sandbox_subscription(uri)))
            .await;
        match (answer, accepted) {
            (Ok(r), true) => assert_eq!(r.status, StatusCode::OK, "{uri}"),
            (Err(e), false) => assert_eq!(
                refusal(e),
                (Some(StatusCode::BAD_REQUEST), "ValidationError".to_owned()),
                "{uri}"
            ),
            (other, _) => panic!("{uri}: {other:?}"),
        }
    }
    emu.shutdown().await;
}
