//! Extensions end to end: external extensions launched from an extensions directory,
//! internal ones inside the function, the INVOKE barrier, SHUTDOWN, SIGTERM to the runtime
//! and the Telemetry API, all as real processes on loopback.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::StatusCode;
use ironlambda_api_client::telemetry::{Destination, TelemetrySubscription, TelemetryType};
use ironlambda_api_client::{
    ApiError, Client, Endpoint, EventType, ExtensionApi, ExtensionId, NextHeaders, RuntimeApi,
};
use ironlambda_emulator::Logs;
use ironlambda_integration_tests::{
    PATIENCE, Scratch, emulator, extensions_dir, idle_emulator, init_count, invoke_in_background,
    report_line,
};
use serde_json::json;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn line(logs: &Logs, prefix: &str) -> String {
    logs.wait_for(PATIENCE, |l| l.starts_with(prefix))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no line starting with {prefix:?}; logs: {:#?}",
                logs.lines()
            )
        })
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
async fn a_slow_extension_holds_back_the_next_invoke_but_not_the_answer() {
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

/// Plays extensions and the runtime by hand against an environment whose function stays
/// idle, so every Extensions API answer can be checked (edge-cases B1–B9, C2).
#[tokio::test]
async fn extensions_api_refusals_match_production() {
    let emu = idle_emulator().await;
    let endpoint = Endpoint::parse(&emu.addr().to_string()).unwrap();
    let api = ExtensionApi::new(endpoint.clone());
    let mut client = Client::new(&endpoint);
    let error_type = |e: ApiError| e.body().map(|b| b.error_type.clone()).unwrap_or_default();

    let invoke = [EventType::Invoke];
    let register = |name: &str, events: &[EventType]| {
        let req = api.register(name, events, false).unwrap();
        let mut c = Client::new(&endpoint);
        async move { c.send(req).await }
    };
    assert_eq!(
        error_type(register("", &invoke).await.unwrap_err()),
        "Extension.InvalidExtensionName"
    );
    assert_eq!(
        error_type(
            register("in-process", &[EventType::Shutdown])
                .await
                .unwrap_err()
        ),
        "Extension.InvalidEventType"
    );
    let ok = register("watcher", &invoke).await.unwrap();
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&ok.body).unwrap()["functionName"],
        "test-function"
    );
    let id_of = |r: &ironlambda_api_client::ApiResponse| {
        ExtensionId::new(r.header("lambda-extension-identifier").unwrap()).unwrap()
    };
    let id = id_of(&ok);
    let mut ids = vec![id.clone()];
    assert_eq!(
        error_type(register("watcher", &invoke).await.unwrap_err()),
        "Extension.InvalidExtensionState"
    );
    for i in 0..9 {
        ids.push(id_of(&register(&format!("filler-{i}"), &[]).await.unwrap()));
    }
    assert_eq!(
        error_type(register("eleventh", &invoke).await.unwrap_err()),
        "Extension.TooManyExtensions"
    );

    // Bodies and headers the API refuses.
    let mut bad = api.register("odd", &invoke, false).unwrap();
    *bad.body_mut() = Bytes::from_static(br#"{"events":["BOOT"]}"#);
    assert_eq!(
        error_type(client.send(bad).await.unwrap_err()),
        "Extension.InvalidEventType"
    );
    let mut next = api.next(&id);
    next.headers_mut().remove("lambda-extension-identifier");
    assert_eq!(
        error_type(client.send(next).await.unwrap_err()),
        "Extension.MissingExtensionIdentifier"
    );
    let not_uuid = ExtensionId::new("not-a-uuid").unwrap();
    assert_eq!(
        error_type(client.send(api.next(&not_uuid)).await.unwrap_err()),
        "Extension.InvalidExtensionIdentifier"
    );
    let stranger = ExtensionId::new("00000000-0000-4000-8000-000000000000").unwrap();
    assert_eq!(
        error_type(client.send(api.next(&stranger)).await.unwrap_err()),
        "Extension.UnknownExtensionIdentifier"
    );
    let mut no_type = api.init_error(&id, "Extension.X", Bytes::new());
    no_type
        .headers_mut()
        .remove("lambda-extension-function-error-type");
    assert_eq!(
        error_type(client.send(no_type).await.unwrap_err()),
        "Extension.MissingHeader"
    );

    // Telemetry: validated, then accepted during init.
    let mut subscription = TelemetrySubscription {
        schema_version: "2022-12-13".into(),
        types: vec![TelemetryType::Platform],
        buffering: Default::default(),
        destination: Destination::Http {
            uri: "http://sandbox.localdomain:9/".into(),
        },
    };
    subscription.buffering.timeout_ms = Some(5);
    let e = client
        .send(api.subscribe_telemetry(&id, &subscription))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status(), error_type(e)),
        (Some(StatusCode::BAD_REQUEST), "ValidationError".to_owned())
    );
    subscription.buffering.timeout_ms = None;
    let r = client
        .send(api.subscribe_telemetry(&id, &subscription))
        .await
        .unwrap();
    assert_eq!(r.body, "\"OK\"");

    // Finish init by hand: the runtime and every extension call next; then an invoke
    // reaches the INVOKE subscriber, and registration and subscriptions are closed.
    let runtime_api = RuntimeApi::new(endpoint.clone());
    let mut runtime = Client::new(&endpoint);
    let runtime_next = tokio::spawn(async move { runtime.send(runtime_api.next()).await.unwrap() });
    let mut waiting = Vec::new();
    for ext in ids {
        let (api, mut c) = (api.clone(), Client::new(&endpoint));
        waiting.push(tokio::spawn(async move { c.send(api.next(&ext)).await }));
    }
    let invoke_task = invoke_in_background(&emu, "{}");
    let event = runtime_next.await.unwrap();
    let request_id = NextHeaders::from_response(&event).request_id;
    let delivered = waiting.remove(0).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&delivered.body).contains(&request_id));
    assert_eq!(
        error_type(register("late", &invoke).await.unwrap_err()),
        "Extension.RegistrationClosed"
    );
    let e = client
        .send(api.subscribe_telemetry(&id, &subscription))
        .await
        .unwrap_err();
    assert_eq!(error_type(e), "Telemetry.SubscriptionClosed");
    let mut rt = Client::new(&endpoint);
    rt.send(
        RuntimeApi::new(endpoint.clone())
            .response(&request_id, Bytes::from_static(b"1"), "application/json")
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(invoke_task.await.unwrap().body, "1");
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
