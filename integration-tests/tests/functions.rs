//! Functions run end to end: example binaries as real processes under the emulator, invoked
//! over real HTTP on loopback. Nothing here asserts on timing.

use std::time::Duration;

use http::{HeaderValue, StatusCode};
use ironlambda_emulator::{invoke_request, send};
use ironlambda_integration_tests::{emulator, error_of, init_count, report_line};
use serde_json::{Value, json};

#[tokio::test]
async fn hello_answers_and_the_platform_reports() {
    let emu = emulator("hello").start().await.unwrap();
    let r = emu.invoke(r#"{"name":"Ada"}"#).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.function_error(), None);
    assert_eq!(r.json().unwrap(), json!({ "message": "Hello, Ada!" }));

    let r2 = emu.invoke("{}").await.unwrap();
    assert_eq!(r2.json().unwrap(), json!({ "message": "Hello, world!" }));

    let id = r.request_id().unwrap().to_owned();
    let report = report_line(&emu, &id).await;
    for field in [
        "Duration: ",
        "Billed Duration: ",
        "Memory Size: 128 MB",
        "Max Memory Used: ",
        "Init Duration: ",
    ] {
        assert!(report.contains(field), "{report}");
    }
    let lines = emu.logs().lines();
    assert!(
        lines.contains(&format!("START RequestId: {id} Version: $LATEST")),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&format!("END RequestId: {id}")),
        "{lines:#?}"
    );
    // The handler's log line names its invocation.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("greeting Ada") && l.contains(&id)),
        "{lines:#?}"
    );
    // The second invoke reused the running process.
    assert_eq!(init_count(&emu), 1);
    emu.shutdown().await;
}

/// Max Memory Used of an invocation's REPORT line.
async fn max_memory_used(emu: &ironlambda_emulator::Emulator, request_id: &str) -> u64 {
    let report = report_line(emu, request_id).await;
    report
        .split("Max Memory Used: ")
        .nth(1)
        .and_then(|rest| rest.split(" MB").next())
        .and_then(|mb| mb.parse().ok())
        .unwrap_or_else(|| panic!("no Max Memory Used in {report}"))
}

#[tokio::test]
async fn max_memory_used_keeps_a_peak_freed_before_the_invocation_ended() {
    let emu = emulator("test-function").start().await.unwrap();
    let mut peaks = Vec::new();
    for event in [
        json!({"action": "echo", "value": 1}),
        json!({"action": "allocate", "mb": 48}),
        json!({"action": "echo", "value": 2}),
    ] {
        let r = emu.invoke(event.to_string()).await.unwrap();
        assert_eq!(r.function_error(), None, "{event}");
        peaks.push(max_memory_used(&emu, r.request_id().unwrap()).await);
    }
    // The 48 MB were resident only inside the second invocation, on top of the process's
    // own few MB (fewer than at its first REPORT, whose peak includes init); Lambda's
    // figure is the environment's peak so far, so the third invocation still shows it.
    assert!(peaks[1] > 48 && peaks[1] > peaks[0], "{peaks:?}");
    assert_eq!(peaks[2], peaks[1], "{peaks:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn typed_errors_reach_the_caller() {
    let emu = emulator("order").start().await.unwrap();
    let cases = [
        (
            r#"{"item":"tea","quantity":"x"}"#,
            "ParseIntError",
            "invalid digit found in string",
        ),
        (
            r#"{"item":"coffee","quantity":"1"}"#,
            "UnknownItem",
            "we do not sell \"coffee\"",
        ),
        (
            r#"{"item":"tea","quantity":"99"}"#,
            "Function.OutOfStock",
            "only 10 tea left",
        ),
    ];
    for (event, error_type, message) in cases {
        let r = emu.invoke(event).await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "{event}");
        assert_eq!(r.function_error(), Some("Unhandled"), "{event}");
        let body = r.json().unwrap();
        assert_eq!(error_of(&body), (error_type, message), "{event}");
        assert_eq!(body["stackTrace"], json!([]));
    }
    let ok = emu
        .invoke(r#"{"item":"scone","quantity":"2"}"#)
        .await
        .unwrap();
    assert_eq!(ok.json().unwrap()["total_cents"], 550);
    assert_eq!(init_count(&emu), 1, "errors must not restart the function");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_panic_fails_one_invocation_and_the_loop_goes_on() {
    let emu = emulator("test-function").start().await.unwrap();
    let r = emu
        .invoke(r#"{"action":"panic","message":"the kettle broke"}"#)
        .await
        .unwrap();
    assert_eq!(r.function_error(), Some("Unhandled"));
    assert_eq!(error_of(&r.json().unwrap()), ("Panic", "the kettle broke"));
    let r = emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
    assert_eq!(r.json().unwrap(), json!({ "echo": 1 }));
    assert_eq!(
        init_count(&emu),
        1,
        "the panic must not have ended the process"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn an_event_of_the_wrong_shape_fails_only_that_invocation() {
    let emu = emulator("hello").start().await.unwrap();
    let r = emu.invoke(r#"{"name":42}"#).await.unwrap();
    assert_eq!(r.function_error(), Some("Unhandled"));
    let body = r.json().unwrap();
    let (error_type, message) = error_of(&body);
    assert_eq!(error_type, "Runtime.InvalidEvent");
    assert!(
        message.contains("`name`") && message.contains("expected a string"),
        "{message}"
    );
    let r = emu.invoke(r#"{"name":"Grace"}"#).await.unwrap();
    assert_eq!(r.json().unwrap()["message"], "Hello, Grace!");
    assert_eq!(init_count(&emu), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn context_carries_what_lambda_sends() {
    let emu = emulator("test-function")
        .memory_mb(512)
        .start()
        .await
        .unwrap();
    let addr = emu.addr();
    let mut req = invoke_request(addr, "test-function", r#"{"action":"context"}"#);
    // {"custom":{"tenant":"blue"}} in base64, as the Invoke API takes it.
    req.headers_mut().insert(
        "x-amz-client-context",
        HeaderValue::from_static("eyJjdXN0b20iOnsidGVuYW50IjoiYmx1ZSJ9fQ=="),
    );
    let r = send(addr, req).await.unwrap();
    let ctx = r.json().unwrap();
    assert_eq!(ctx["request_id"], r.request_id().unwrap());
    assert_eq!(
        ctx["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:test-function"
    );
    assert_eq!(ctx["function_name"], "test-function");
    assert_eq!(ctx["memory_mb"], 512);
    assert_eq!(ctx["client_context"]["custom"]["tenant"], "blue");
    let remaining = ctx["remaining_ms"].as_u64().unwrap();
    assert!(remaining > 0 && remaining <= 60_000, "{remaining}");
    let trace = ctx["trace_id"].as_str().unwrap();
    assert!(trace.starts_with("Root=1-"), "{trace}");
    // The function runs on one thread, so the runtime keeps _X_AMZN_TRACE_ID in step.
    assert_eq!(ctx["trace_env"], trace);
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_functions_are_not_found() {
    let emu = emulator("hello").start().await.unwrap();
    let addr = emu.addr();
    let r = send(addr, invoke_request(addr, "someone-else", "{}"))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["x-amzn-errortype"], "ResourceNotFoundException");
    // RIE's name for the function works too.
    let r = send(addr, invoke_request(addr, "function", "{}"))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    emu.shutdown().await;
}

#[tokio::test]
async fn json_log_format_names_the_request_on_every_line() {
    let emu = emulator("hello")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"name":"Ada"}"#).await.unwrap();
    let id = r.request_id().unwrap().to_owned();
    let line = emu
        .logs()
        .wait_for(ironlambda_integration_tests::PATIENCE, |l| {
            l.contains("greeting Ada")
        })
        .await
        .expect("the handler's log line");
    let record: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(record["level"], "INFO", "{line}");
    assert_eq!(record["requestId"], id.as_str(), "{line}");
    let message = record["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("greeting Ada"), "{line}");
    emu.shutdown().await;
}

/// With Lambda's log level at WARN, lines logged during an invocation still name it, in
/// text and in JSON; INFO lines are filtered even when a stray RUST_LOG asks for them.
#[tokio::test]
async fn at_warn_level_error_lines_still_name_the_request() {
    for format in ["Text", "JSON"] {
        let emu = emulator("test-function")
            .env("AWS_LAMBDA_LOG_FORMAT", format)
            .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
            .env("RUST_LOG", "trace")
            .start()
            .await
            .unwrap();
        emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
        let r = emu
            .invoke(r#"{"action":"fail","message":"no"}"#)
            .await
            .unwrap();
        let id = r.request_id().unwrap().to_owned();
        let line = emu
            .logs()
            .wait_for(ironlambda_integration_tests::PATIENCE, |l| {
                l.contains("invocation failed")
            })
            .await
            .expect("the runtime logs the failure");
        assert!(line.contains(&id), "{format}: {line}");
        let lines = emu.logs().lines();
        assert!(
            !lines.iter().any(|l| l.contains("echoing")),
            "{format}: an INFO line got through: {lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("RUST_LOG") && l.contains("ignored")),
            "{format}: {lines:#?}"
        );
        emu.shutdown().await;
    }
}

/// A function that is a shell wrapper forking a helper (no `exec` for the helper): when
/// the environment goes away, the helper goes with it.
#[tokio::test]
async fn a_process_the_function_forked_does_not_outlive_the_environment() {
    let dir = ironlambda_integration_tests::Scratch::new("wrapper");
    let pid_file = dir.path().join("helper.pid");
    let wrapper = dir.path().join("bootstrap");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nsleep 600 &\necho $! > '{}'\nexec '{}'\n",
            pid_file.display(),
            ironlambda_integration_tests::binary("hello").display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();
    let emu = ironlambda_emulator::Emulator::builder(&wrapper)
        .name("hello")
        .timeout(ironlambda_integration_tests::PATIENCE)
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"name":"Ada"}"#).await.unwrap();
    assert_eq!(r.json().unwrap(), json!({ "message": "Hello, Ada!" }));
    let helper: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{helper}")).exists());
    emu.shutdown().await;
    // The helper was SIGKILLed with its group; give the kernel a moment to tear it down.
    let mut gone = false;
    for _ in 0..250 {
        let state = std::fs::read_to_string(format!("/proc/{helper}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init to reap it.
        if state.is_empty()
            || state
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "the helper process {helper} outlived the environment");
}

/// After a blocking task the process has several threads, so `_X_AMZN_TRACE_ID` can no
/// longer be changed soundly. The runtime says so loudly, and the right trace stays
/// readable in the context and from `ironlambda_runtime::trace_id()`.
#[tokio::test]
async fn the_trace_id_is_always_readable_and_a_stale_variable_is_announced() {
    let emu = emulator("test-function").start().await.unwrap();
    let traced = |trace: &'static str| {
        let mut request = invoke_request(emu.addr(), "test-function", r#"{"action":"trace"}"#);
        request
            .headers_mut()
            .insert("x-amzn-trace-id", HeaderValue::from_static(trace));
        send(emu.addr(), request)
    };
    let first = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let second = "Root=1-5759e988-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad9;Sampled=1";
    let r = traced(first).await.unwrap().json().unwrap();
    // Still one thread when the variable was set: all three agree.
    assert_eq!(
        r,
        json!({"context": first, "task_local": first, "env": first})
    );
    let r = traced(second).await.unwrap().json().unwrap();
    assert_eq!(r["context"], second);
    assert_eq!(r["task_local"], second);
    assert_eq!(r["env"], first, "the variable could not follow");
    let warning = emu
        .logs()
        .wait_for(ironlambda_integration_tests::PATIENCE, |l| {
            l.contains("_X_AMZN_TRACE_ID keeps an earlier invocation's trace")
        })
        .await;
    assert!(warning.is_some(), "{:#?}", emu.logs().lines());
    emu.shutdown().await;
}

/// A panic inside the user's own `Deserialize` or `Serialize` impl fails that invocation
/// as a `Panic`, like a panic in the handler, and the function goes on serving (the half
/// answer written before the panic goes nowhere).
#[tokio::test]
async fn panics_in_user_serde_impls_fail_only_their_invocation() {
    let emu = emulator("test-function").start().await.unwrap();
    let r = emu
        .invoke(r#"{"action":"explode_in_deserialize","value":1}"#)
        .await
        .unwrap();
    assert_eq!(r.function_error(), Some("Unhandled"));
    assert_eq!(
        error_of(&r.json().unwrap()),
        ("Panic", "Deserialize exploded")
    );
    let r = emu
        .invoke(r#"{"action":"explode_in_serialize"}"#)
        .await
        .unwrap();
    assert_eq!(r.function_error(), Some("Unhandled"));
    assert_eq!(
        error_of(&r.json().unwrap()),
        ("Panic", "Serialize exploded")
    );
    let r = emu
        .invoke(r#"{"action":"echo","value":"still here"}"#)
        .await
        .unwrap();
    assert_eq!(r.json().unwrap(), json!({ "echo": "still here" }));
    assert_eq!(init_count(&emu), 1, "the process survived both panics");
    let lines = emu.logs().lines();
    assert!(
        !lines.iter().any(|l| l.contains("WARN")),
        "the runtime's exchange with the API stayed clean: {lines:#?}"
    );
    emu.shutdown().await;
}

/// Several functions from one emulator: the Invoke API routes by name, each function runs
/// in environments of its own (its own process), its lines carry its name, and a name
/// served by none gets Lambda's 404.
#[tokio::test]
async fn several_functions_are_served_by_name_each_in_its_own_environment() {
    // The second function with limits of its own.
    let mut checker = ironlambda_emulator::FunctionConfig::new(
        ironlambda_integration_tests::binary("test-function"),
    );
    checker.name = "checker".into();
    checker.memory_mb = 512;
    let emu = emulator("hello")
        .function_config(checker)
        .start()
        .await
        .unwrap();
    let hello = emu.invoke(r#"{"name":"Ada"}"#).await.unwrap();
    assert_eq!(hello.json().unwrap(), json!({"message": "Hello, Ada!"}));
    let ctx = emu
        .invoke_function("checker", r#"{"action":"context"}"#)
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ctx["function_name"], "checker");
    assert_eq!(ctx["memory_mb"], 512);
    assert_eq!(
        ctx["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:checker"
    );
    let missing = emu.invoke_function("nobody", "{}").await.unwrap();
    assert_eq!(missing.status, http::StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers["x-amzn-errortype"],
        "ResourceNotFoundException"
    );
    let lines = emu.logs().lines();
    for name in ["hello", "checker"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("[{name}] REPORT RequestId"))),
            "{lines:#?}"
        );
    }
    assert_eq!(
        emu.functions().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["hello", "checker"]
    );
    emu.shutdown().await;
}

/// Two functions under one name, or a name Lambda would refuse, fail at startup.
#[tokio::test]
async fn function_names_must_be_unique_and_valid() {
    let test_function = ironlambda_integration_tests::binary("test-function");
    let twice = emulator("hello")
        .function("hello", &test_function)
        .start()
        .await;
    assert!(
        twice
            .unwrap_err()
            .to_string()
            .contains("two functions are named"),
    );
    let bad = emulator("hello")
        .function("no spaces", &test_function)
        .start()
        .await;
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("is not a function name")
    );
}

/// The SQS example names the messages it could not take, so SQS retries only those.
#[tokio::test]
async fn the_sqs_example_reports_the_messages_it_could_not_take() {
    let emu = emulator("sqs-batch").start().await.unwrap();
    let event = json!({"Records": [
        {"messageId": "good", "body": "{\"order\":42}"},
        {"messageId": "bad", "body": "not an order"}
    ]});
    let r = emu.invoke(event.to_string()).await.unwrap();
    assert_eq!(
        r.json().unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "bad"}]})
    );
    emu.shutdown().await;
}
