//! edge-cases.md §B: the Extensions API. The emulator's answers are checked by a test that
//! plays the extensions itself; what ironlambda-extension does is checked with the real
//! `test-extension` process.

use bytes::Bytes;
use http::StatusCode;
use ironlambda_api_client::{EventType, ExtensionEvent, ExtensionId, ShutdownReason};
use ironlambda_integration_tests::scripted::{
    Act, reply, scripted_api, start_function, wait_for_exit,
};
use ironlambda_integration_tests::{
    PATIENCE, Scratch, emulator, extensions_dir, idle_emulator, invoke_in_background, line,
};
use serde_json::json;

use crate::{Extensions, forbidden, refusal};

#[tokio::test]
async fn b1_a_registration_without_a_name_is_refused_invalid_extension_name() {
    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    let e = ext.register("", &[EventType::Invoke]).await.unwrap_err();
    assert_eq!(refusal(e), forbidden("Extension.InvalidExtensionName"));
    emu.shutdown().await;
}

#[tokio::test]
async fn b2_a_registration_body_that_is_not_json_is_refused_and_any_json_object_accepted() {
    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    for body in ["", "not json", "[1]"] {
        let e = ext.register_body("odd", body).await.unwrap_err();
        assert_eq!(refusal(e), forbidden("InvalidRequestFormat"), "{body:?}");
    }
    // What Lambda accepts: no events, null events (aws-lambda-go's SIGTERM helper), and
    // fields it does not know.
    for (n, body) in [
        r#"{}"#,
        r#"{"events":null}"#,
        r#"{"events":["INVOKE"],"future":true}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let r = ext.register_body(&format!("ok-{n}"), body).await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{body}");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["functionName"],
            "test-function"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn b3_an_unknown_event_or_shutdown_for_an_internal_extension_is_refused() {
    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    let e = ext
        .register_body("odd", r#"{"events":["BOOT"]}"#)
        .await
        .unwrap_err();
    assert_eq!(refusal(e), forbidden("Extension.InvalidEventType"));
    // Not launched from the extensions directory, so internal: INVOKE only.
    let e = ext
        .register("in-process", &[EventType::Shutdown])
        .await
        .unwrap_err();
    assert_eq!(refusal(e), forbidden("Extension.InvalidEventType"));
    emu.shutdown().await;
}

#[tokio::test]
async fn b4_a_second_registration_under_the_same_name_is_refused() {
    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    ext.registered("watcher").await;
    let e = ext
        .register("watcher", &[EventType::Invoke])
        .await
        .unwrap_err();
    assert_eq!(refusal(e), forbidden("Extension.InvalidExtensionState"));
    emu.shutdown().await;
}

#[tokio::test]
async fn b5_registration_after_init_is_refused_registration_closed() {
    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    let id = ext.registered_for("early", &[]).await;
    let (rt, invocation) = ext.end_init(&emu, id).await;
    let e = ext
        .register("late", &[EventType::Invoke])
        .await
        .unwrap_err();
    assert_eq!(refusal(e), forbidden("Extension.RegistrationClosed"));
    rt.answer_and_release(emu, invocation).await;
}

#[tokio::test]
async fn b6_an_eleventh_extension_is_refused_too_many_extensions() {
    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    for i in 0..10 {
        ext.registered(&format!("ext-{i}")).await;
    }
    let e = ext
        .register("eleventh", &[EventType::Invoke])
        .await
        .unwrap_err();
    assert_eq!(refusal(e), forbidden("Extension.TooManyExtensions"));
    emu.shutdown().await;
}

#[tokio::test]
async fn b7_a_missing_malformed_or_unknown_identifier_is_refused_each_by_name() {
    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    let id = ext.registered("watcher").await;
    let mut next = ext.api.next(&id);
    next.headers_mut().remove("lambda-extension-identifier");
    let e = ext.send(next).await.unwrap_err();
    assert_eq!(
        refusal(e),
        forbidden("Extension.MissingExtensionIdentifier")
    );
    let not_uuid = ExtensionId::new("not-a-uuid").unwrap();
    let e = ext.send(ext.api.next(&not_uuid)).await.unwrap_err();
    assert_eq!(
        refusal(e),
        forbidden("Extension.InvalidExtensionIdentifier")
    );
    let stranger = ExtensionId::new("00000000-0000-4000-8000-000000000000").unwrap();
    let e = ext.send(ext.api.next(&stranger)).await.unwrap_err();
    assert_eq!(
        refusal(e),
        forbidden("Extension.UnknownExtensionIdentifier")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn b8_event_next_after_reporting_an_error_is_refused_invalid_extension_state() {
    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    let id = ext.registered("broken").await;
    let r = ext
        .send(
            ext.api
                .init_error(&id, "Extension.ConfigInvalid", Bytes::new()),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let e = ext.send(ext.api.next(&id)).await.unwrap_err();
    assert_eq!(refusal(e), forbidden("Extension.InvalidExtensionState"));
    emu.shutdown().await;
}

#[tokio::test]
async fn b9_an_init_or_exit_error_without_its_error_type_header_is_refused_missing_header() {
    let emu = idle_emulator().await;
    let ext = Extensions::new(&emu);
    let id = ext.registered("watcher").await;
    for mut req in [
        ext.api.init_error(&id, "Extension.X", Bytes::new()),
        ext.api.exit_error(&id, "Extension.X", Bytes::new()),
    ] {
        req.headers_mut()
            .remove("lambda-extension-function-error-type");
        let e = ext.send(req).await.unwrap_err();
        assert_eq!(refusal(e), forbidden("Extension.MissingHeader"));
    }
    let r = ext
        .send(ext.api.exit_error(&id, "Extension.X", Bytes::new()))
        .await
        .unwrap();
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::ACCEPTED, &br#"{"status":"OK"}"#[..])
    );
    emu.shutdown().await;
}

#[test]
fn b10_an_invoke_event_without_tracing_or_other_optional_fields_is_read() {
    let lambda = r#"{"eventType":"INVOKE","deadlineMs":1700000000000,"requestId":"r-1","invokedFunctionArn":"arn:aws:lambda:us-east-1:1:function:f"}"#;
    let sparse = r#"{"eventType":"INVOKE"}"#;
    for (text, id) in [(lambda, "r-1"), (sparse, "")] {
        match serde_json::from_str::<ExtensionEvent>(text).unwrap() {
            ExtensionEvent::Invoke(e) => {
                assert_eq!(e.request_id, id);
                assert_eq!(e.tracing, None);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn b11_shutdown_reasons_are_read_whatever_their_spelling() {
    for (sent, read) in [
        ("spindown", ShutdownReason::Spindown),
        ("SPINDOWN", ShutdownReason::Spindown),
        ("Timeout", ShutdownReason::Timeout),
        ("failure", ShutdownReason::Failure),
        (
            "recompiling function",
            ShutdownReason::Other("recompiling function".into()),
        ),
    ] {
        let event = json!({"eventType": "SHUTDOWN", "shutdownReason": sent, "deadlineMs": 1});
        match serde_json::from_value::<ExtensionEvent>(event).unwrap() {
            ExtensionEvent::Shutdown(e) => assert_eq!(e.shutdown_reason, read, "{sent}"),
            other => panic!("{other:?}"),
        }
    }
}

/// Lambda sends SHUTDOWN without a content type, so Go's server sniffs `text/plain`: the
/// extension reads the event anyway, runs its hook and exits 0.
#[test]
fn b12_a_shutdown_event_is_read_whatever_its_content_type() {
    let port = scripted_api(|req| {
        if req.path() == "/2020-01-01/extension/register" {
            return Act::Reply(reply(
                "200 OK",
                &[(
                    "Lambda-Extension-Identifier",
                    "5a5e7f3c-1b2d-4c3e-9f00-000000000001",
                )],
                r#"{"functionName":"f","functionVersion":"$LATEST","handler":"bootstrap"}"#,
            ));
        }
        if req.path() == "/2020-01-01/extension/event/next" {
            return Act::Reply(reply(
                "200 OK",
                &[("Content-Type", "text/plain; charset=utf-8")],
                r#"{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":99999999999999}"#,
            ));
        }
        Act::Close
    });
    let extension = start_function("test-extension", &format!("127.0.0.1:{port}"), &[]);
    let out = wait_for_exit(extension);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An extension whose SHUTDOWN hook never returns is SIGKILLed when the 2 s budget ends,
/// and the emulator finishes its shutdown.
#[tokio::test]
async fn b14_an_extension_that_does_not_exit_after_shutdown_is_killed_at_the_deadline() {
    let dir = extensions_dir(&["test-extension"]);
    let emu = emulator("test-function")
        .extensions_dir(dir.path())
        .env("EXT_HANG_AT_SHUTDOWN", "1")
        .start()
        .await
        .unwrap();
    emu.invoke("{}").await.unwrap();
    let logs = emu.logs().clone();
    tokio::time::timeout(PATIENCE, emu.shutdown())
        .await
        .expect("the shutdown finishes");
    let lines = logs.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[test-extension] SHUTDOWN spindown")),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("did not exit after SIGKILL")),
        "{lines:#?}"
    );
}

/// Directories in the extensions directory are skipped; a file that cannot run fails init
/// with `Extension.LaunchError`, and the invoke says so.
#[tokio::test]
async fn b16_directories_are_skipped_and_an_extension_that_cannot_start_fails_init() {
    let dir = extensions_dir(&["test-extension"]);
    std::fs::create_dir(dir.path().join("a-directory")).unwrap();
    let emu = emulator("test-function")
        .extensions_dir(dir.path())
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
    assert_eq!(r.json().unwrap(), json!({"echo": 1}));
    emu.shutdown().await;

    let broken = Scratch::new("broken-extensions");
    std::fs::write(broken.path().join("not-executable"), "plain text").unwrap();
    let emu = emulator("test-function")
        .extensions_dir(broken.path())
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
    assert_eq!(r.function_error(), Some("Unhandled"));
    assert_eq!(r.json().unwrap()["errorType"], "Extension.LaunchError");
    emu.shutdown().await;
}

#[tokio::test]
async fn b13_a_slow_extension_holds_back_the_next_invoke_but_not_the_answer() {
    let dir = extensions_dir(&["test-extension"]);
    let scratch = Scratch::new("release");
    let release = scratch.path().join("release");
    let emu = emulator("test-function")
        .extensions_dir(dir.path())
        .env("EXT_WAIT_FOR", release.to_string_lossy())
        .start()
        .await
        .unwrap();
    // The answer comes while the extension is still busy with this invocation.
    let first = emu
        .invoke(r#"{"action":"echo","value":"first"}"#)
        .await
        .unwrap();
    assert_eq!(first.json().unwrap(), json!({"echo": "first"}));
    let first_id = first.request_id().unwrap().to_owned();
    line(emu.logs(), &format!("[test-extension] INVOKE {first_id}")).await;
    assert!(
        !emu.logs()
            .lines()
            .iter()
            .any(|l| l.contains(&format!("done {first_id}")))
    );

    // The next invoke waits for the extension (the barrier) and then runs.
    let second = invoke_in_background(&emu, r#"{"action":"echo","value":"second"}"#);
    std::fs::write(&release, "go").unwrap();
    let second = second.await.unwrap();
    assert_eq!(second.json().unwrap(), json!({"echo": "second"}));
    let lines = emu.logs().lines();
    let done_first = lines
        .iter()
        .position(|l| l == &format!("[test-extension] done {first_id}"))
        .unwrap();
    let start_second = lines
        .iter()
        .position(|l| {
            l.starts_with(&format!(
                "START RequestId: {}",
                second.request_id().unwrap()
            ))
        })
        .unwrap();
    assert!(done_first < start_second, "{lines:#?}");
    emu.shutdown().await;
}

/// A layer that ships the marker `disable-extensions-jwigqn8j` beside the extensions
/// directory turns extensions off (edge-cases B15): none is launched, their APIs answer
/// 404, and a function that installs graceful shutdown still starts and serves.
#[tokio::test]
async fn b15_extensions_disabled_by_the_marker_file() {
    let opt = Scratch::new("opt");
    let extensions = opt.path().join("extensions");
    std::fs::create_dir(&extensions).unwrap();
    std::os::unix::fs::symlink(
        ironlambda_integration_tests::binary("test-extension"),
        extensions.join("test-extension"),
    )
    .unwrap();
    std::fs::write(
        opt.path()
            .join(ironlambda_emulator::EXTENSIONS_DISABLED_MARKER),
        "",
    )
    .unwrap();
    let emu = emulator("graceful")
        .extensions_dir(&extensions)
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"item":"tea"}"#).await.unwrap();
    assert_eq!(r.function_error(), None, "{}", r.text());
    let endpoint = ironlambda_api_client::Endpoint::parse(&emu.addr().to_string()).unwrap();
    let api = ironlambda_api_client::ExtensionApi::new(endpoint.clone());
    let mut client = ironlambda_api_client::Client::new(&endpoint);
    let refused = client
        .send(api.register("late", &[], false).unwrap())
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::NOT_FOUND));
    let lines = emu.logs().lines();
    assert!(
        !lines.iter().any(|l| l.starts_with("[test-extension]")),
        "an extension ran: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("graceful shutdown is off")),
        "{lines:#?}"
    );
    emu.shutdown().await;
}
