//! Extensions end to end: external extensions launched from an extensions directory,
//! internal ones inside the function, the INVOKE barrier, SHUTDOWN, SIGTERM to the runtime
//! and the Telemetry API, all as real processes on loopback.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ironlambda_integration_tests::{
    Scratch, emulator, extensions_dir, init_count, line, report_line,
};
use serde_json::json;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn number_after(line: &str, key: &str) -> u64 {
    line.split(key)
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn an_external_extension_gets_invoke_and_then_shutdown() {
    let dir = extensions_dir(&["test-extension"]);
    let emu = emulator("test-function")
        .extensions_dir(dir.path())
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
    assert_eq!(r.json().unwrap(), json!({"echo": 1}));
    let id = r.request_id().unwrap().to_owned();
    let invoke = line(
        emu.logs(),
        &format!("[test-extension] INVOKE {id} deadline="),
    )
    .await;
    assert!(number_after(&invoke, "deadline=") > now_ms(), "{invoke}");
    line(emu.logs(), &format!("[test-extension] done {id}")).await;

    let logs = emu.logs().clone();
    let stopped_at = now_ms();
    emu.shutdown().await;
    let shutdown = line(&logs, "[test-extension] SHUTDOWN spindown deadline=").await;
    // The deadline is the end of the 2 s budget for external extensions.
    let deadline = number_after(&shutdown, "deadline=");
    assert!(
        deadline >= stopped_at && deadline <= now_ms() + 2_000,
        "{shutdown}"
    );
}

#[tokio::test]
async fn an_extension_that_never_finishes_is_killed_at_the_timeout_and_the_environment_recovers() {
    let dir = extensions_dir(&["test-extension"]);
    let emu = emulator("test-function")
        .extensions_dir(dir.path())
        .env("EXT_HANG", "1")
        .timeout(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
    // The runtime answered, so the caller has its answer; the invoke itself times out.
    assert_eq!(r.json().unwrap(), json!({"echo": 1}));
    let report = report_line(&emu, r.request_id().unwrap()).await;
    assert!(report.contains("Status: timeout"), "{report}");

    let r = emu.invoke(r#"{"action":"echo","value":2}"#).await.unwrap();
    assert_eq!(r.json().unwrap(), json!({"echo": 2}));
    assert_eq!(init_count(&emu), 2, "the environment was started again");
    emu.shutdown().await;
}

#[tokio::test]
async fn sigterm_reaches_the_function_only_when_an_extension_is_registered() {
    // No extension: the runtime is SIGKILLed at once and never sees SIGTERM.
    let scratch = Scratch::new("sigterm");
    let marker = scratch.path().join("without-extension");
    let emu = emulator("test-function")
        .env("ON_SIGTERM_WRITE", marker.to_string_lossy())
        .start()
        .await
        .unwrap();
    emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
    emu.shutdown().await;
    assert!(
        !marker.exists(),
        "SIGTERM was sent although no extension was registered"
    );

    // With an external extension: SIGTERM first.
    let dir = extensions_dir(&["test-extension"]);
    let marker = scratch.path().join("with-extension");
    let emu = emulator("test-function")
        .extensions_dir(dir.path())
        .env("ON_SIGTERM_WRITE", marker.to_string_lossy())
        .start()
        .await
        .unwrap();
    emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
    emu.shutdown().await;
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "got SIGTERM");

    // GracefulShutdown registers its own internal extension, so its hook runs.
    let flushed = scratch.path().join("flushed");
    let emu = emulator("graceful")
        .env("FLUSH_TO", flushed.to_string_lossy())
        .start()
        .await
        .unwrap();
    for item in ["tea", "scone"] {
        let r = emu
            .invoke(json!({ "item": item }).to_string())
            .await
            .unwrap();
        assert_eq!(r.function_error(), None, "{}", r.text());
    }
    let logs = emu.logs().clone();
    emu.shutdown().await;
    assert_eq!(
        std::fs::read_to_string(&flushed).unwrap(),
        "flushed 2 items: tea,scone"
    );
    line(&logs, " INFO graceful shutdown: \"flush buffer\" finished").await;
}

#[tokio::test]
async fn an_internal_extension_sees_every_invocation() {
    let emu = emulator("internal-extension").start().await.unwrap();
    for n in 1..=2 {
        let r = emu.invoke(json!({ "n": n }).to_string()).await.unwrap();
        let id = r.request_id().unwrap().to_owned();
        assert_eq!(r.json().unwrap()["request_id"], id.as_str());
        line(
            emu.logs(),
            &format!("invocation-counter: invocation {n} is {id}"),
        )
        .await;
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn telemetry_records_arrive_at_the_extensions_listener() {
    let dir = extensions_dir(&["telemetry-summary"]);
    let emu = emulator("hello")
        .extensions_dir(dir.path())
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"name":"Ada"}"#).await.unwrap();
    let id = r.request_id().unwrap().to_owned();
    let summary = line(emu.logs(), &format!("[telemetry-summary] summary {id}: ")).await;
    assert!(summary.ends_with("of 128 MB, success"), "{summary}");
    line(emu.logs(), &format!("[telemetry-summary] INVOKE {id}")).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn telemetry_and_logs_api_subscribers_get_platform_events_and_function_logs() {
    for api in ["telemetry", "logs"] {
        let dir = extensions_dir(&["test-extension"]);
        let emu = emulator("test-function")
            .extensions_dir(dir.path())
            .env("EXT_SUBSCRIBE", api)
            .start()
            .await
            .unwrap();
        let r = emu
            .invoke(r#"{"action":"echo","value":"logged"}"#)
            .await
            .unwrap();
        let id = r.request_id().unwrap().to_owned();
        for kind in ["platform.start", "platform.runtimeDone", "platform.report"] {
            line(emu.logs(), &format!("[test-extension] got {kind} {id}")).await;
        }
        let log = line(emu.logs(), "[test-extension] got function").await;
        assert!(
            log.contains("echoing \\\"logged\\\"") && log.contains(&id),
            "{api}: {log}"
        );
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn shutdown_reasons_say_what_happened() {
    let dir = extensions_dir(&["test-extension"]);
    let emu = emulator("test-function")
        .extensions_dir(dir.path())
        .timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let r = emu
        .invoke(r#"{"action":"sleep","ms":120000}"#)
        .await
        .unwrap();
    assert_eq!(r.json().unwrap()["errorType"], "Sandbox.Timedout");
    line(emu.logs(), "[test-extension] SHUTDOWN timeout deadline=").await;

    let r = emu.invoke(r#"{"action":"exit","code":2}"#).await.unwrap();
    assert_eq!(r.json().unwrap()["errorType"], "Runtime.ExitError");
    line(emu.logs(), "[test-extension] SHUTDOWN failure deadline=").await;

    let r = emu
        .invoke(r#"{"action":"echo","value":"again"}"#)
        .await
        .unwrap();
    assert_eq!(r.json().unwrap(), json!({"echo": "again"}));
    assert_eq!(init_count(&emu), 3);
    emu.shutdown().await;
}

/// A layer that installs its extension as a symlink under another name: the extension
/// registers under the link's name (the file Lambda launched), so it counts as the
/// external extension it is and init completes.
#[tokio::test]
async fn an_extension_linked_under_another_name_registers_by_the_link_name() {
    let dir = Scratch::new("renamed-extension");
    std::os::unix::fs::symlink(
        ironlambda_integration_tests::binary("test-extension"),
        dir.path().join("renamed-extension"),
    )
    .unwrap();
    let emu = emulator("hello")
        .init_timeout(Duration::from_secs(10))
        .extensions_dir(dir.path())
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"name":"Ada"}"#).await.unwrap();
    assert_eq!(r.function_error(), None, "{}", r.text());
    assert_eq!(r.json().unwrap(), json!({ "message": "Hello, Ada!" }));
    line(emu.logs(), "[renamed-extension] INVOKE ").await;
    emu.shutdown().await;
}

/// Telemetry as Lambda delivers it: a function line that merely starts with `{` is text
/// in Text log format; `platform.report` says `error` after `/error`; and lines printed
/// while the environment shuts down still reach the subscriber.
#[tokio::test]
async fn telemetry_records_what_happened_through_the_shutdown() {
    let dir = extensions_dir(&["test-extension"]);
    let marker = Scratch::new("sigterm-marker");
    let emu = emulator("test-function")
        .extensions_dir(dir.path())
        .env("EXT_SUBSCRIBE", "telemetry")
        .env(
            "ON_SIGTERM_WRITE",
            marker.path().join("got-sigterm").display().to_string(),
        )
        .start()
        .await
        .unwrap();
    emu.invoke(r#"{"action":"print","text":"{\"looks\":\"like json\"}"}"#)
        .await
        .unwrap();
    line(
        emu.logs(),
        r#"[test-extension] got function "{\"looks\":\"like json\"}""#,
    )
    .await;
    let failed = emu
        .invoke(r#"{"action":"fail","message":"no"}"#)
        .await
        .unwrap();
    let id = failed.request_id().unwrap().to_owned();
    line(
        emu.logs(),
        &format!("[test-extension] got platform.report {id} error"),
    )
    .await;
    let logs = emu.logs().clone();
    emu.shutdown().await;
    assert!(
        logs.lines()
            .iter()
            .any(|l| l == r#"[test-extension] got function "cleaning up after SIGTERM""#),
        "the SIGTERM line never reached the subscriber: {:#?}",
        logs.lines()
    );
}

/// An extension that only subscribes to telemetry (no hooks) still gets the deliveries
/// that are pending when the environment shuts down.
#[tokio::test]
async fn a_telemetry_only_extension_gets_its_last_batch_at_shutdown() {
    let dir = extensions_dir(&["test-extension"]);
    let emu = emulator("hello")
        .extensions_dir(dir.path())
        .env("EXT_SUBSCRIBE", "telemetry")
        .env("EXT_TELEMETRY_ONLY", "1")
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"name":"Ada"}"#).await.unwrap();
    let id = r.request_id().unwrap().to_owned();
    let logs = emu.logs().clone();
    // At once: the batch with this invocation's report is still buffered (1 s).
    emu.shutdown().await;
    let want = format!("[test-extension] got platform.report {id} success");
    assert!(
        logs.lines().contains(&want),
        "the last batch was lost: {:#?}",
        logs.lines()
    );
}
