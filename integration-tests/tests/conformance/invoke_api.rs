//! edge-cases.md §D: the Invoke API side of the emulator, checked with real invokes over
//! HTTP against real function processes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, StatusCode};
use ironlambda_emulator::{invoke_request, send};
use ironlambda_integration_tests::{
    PATIENCE, assert_timed_out, emulator, error_of, extensions_dir, init_count, report_line,
};
use serde_json::json;

#[tokio::test]
async fn d3_a_dry_run_is_answered_204_without_running_anything() {
    let emu = emulator("test-function").start().await.unwrap();
    let mut req = invoke_request(emu.addr(), "test-function", "{}");
    req.headers_mut()
        .insert("x-amz-invocation-type", HeaderValue::from_static("DryRun"));
    let r = send(emu.addr(), req).await.unwrap();
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    assert_eq!(init_count(&emu), 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn d5_a_client_context_over_3583_bytes_is_refused_400() {
    use base64::Engine;
    let emu = emulator("test-function").start().await.unwrap();
    // The limit is on the base64 text: 3,580 characters pass, 3,584 do not.
    let context_of = |encoded_len: usize| {
        let json_len = encoded_len / 4 * 3;
        format!(r#"{{"custom":{{"k":"{}"}}}}"#, "v".repeat(json_len - 19))
    };
    let (fits, too_big) = (context_of(3580), context_of(3584));
    for (context, ok) in [(fits, true), (too_big, false)] {
        let mut req = invoke_request(emu.addr(), "test-function", r#"{"action":"context"}"#);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&context);
        req.headers_mut().insert(
            "x-amz-client-context",
            HeaderValue::from_str(&encoded).unwrap(),
        );
        let r = send(emu.addr(), req).await.unwrap();
        if ok {
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            assert!(r.json().unwrap()["client_context"]["custom"]["k"].is_string());
        } else {
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn d6_a_function_error_is_answered_200_with_x_amz_function_error_unhandled() {
    let emu = emulator("test-function").start().await.unwrap();
    let r = emu
        .invoke(r#"{"action":"fail","message":"out of stock"}"#)
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.function_error(), Some("Unhandled"));
    assert_eq!(
        error_of(&r.json().unwrap()),
        ("Function.Requested", "out of stock")
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn d7_a_callers_own_request_id_is_honoured_and_an_unusable_one_refused() {
    let emu = emulator("test-function").start().await.unwrap();
    let mut req = invoke_request(emu.addr(), "test-function", r#"{"action":"context"}"#);
    req.headers_mut().insert(
        "x-amzn-requestid",
        HeaderValue::from_static("my-own-id-0001"),
    );
    let r = send(emu.addr(), req).await.unwrap();
    assert_eq!(r.request_id(), Some("my-own-id-0001"));
    assert_eq!(r.json().unwrap()["request_id"], "my-own-id-0001");

    let mut req = invoke_request(emu.addr(), "test-function", r#"{"action":"context"}"#);
    req.headers_mut().insert(
        "x-amzn-requestid",
        HeaderValue::from_static("../init/error"),
    );
    let r = send(emu.addr(), req).await.unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Without one, each invoke gets a fresh UUID.
    let a = emu.invoke("{}").await.unwrap();
    let b = emu.invoke("{}").await.unwrap();
    let (a, b) = (a.request_id().unwrap(), b.request_id().unwrap());
    assert_ne!(a, b);
    assert!(a.len() == 36 && a.split('-').count() == 5, "{a}");
    emu.shutdown().await;
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// Waits until process `pid` is gone (or reaped), and returns when, in epoch ms.
async fn gone_at(pid: u64) -> u128 {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        // Gone, or a zombie waiting to be reaped: either way it no longer runs.
        let running = state.is_some_and(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                != Some("Z")
        });
        if !running {
            return epoch_ms();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pid} never went away"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The shutdown budgets (protocol.md §3.4): with no extension the runtime is SIGKILLed at
/// once, never seeing SIGTERM (0 ms); with an external extension it gets SIGTERM and 300 ms
/// before SIGKILL, and the extension is SIGKILLed when the 2,000 ms budget ends.
#[tokio::test]
async fn d9_shutdown_budgets_of_0_and_2000_ms_with_a_measured_sigterm_to_sigkill_gap() {
    // No extension: no SIGTERM at all.
    let emu = emulator("test-function")
        .env("ON_SIGTERM_IGNORE", "1")
        .start()
        .await
        .unwrap();
    emu.invoke("{}").await.unwrap();
    let logs = emu.logs().clone();
    emu.shutdown().await;
    assert!(
        !logs.lines().iter().any(|l| l.contains("got SIGTERM")),
        "{:#?}",
        logs.lines()
    );

    // An external extension that never finishes its SHUTDOWN hook, and a runtime that
    // ignores SIGTERM.
    let dir = extensions_dir(&["test-extension"]);
    let emu = emulator("test-function")
        .extensions_dir(dir.path())
        .env("ON_SIGTERM_IGNORE", "1")
        .env("EXT_HANG_AT_SHUTDOWN", "1")
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"action":"context"}"#).await.unwrap();
    let runtime_pid = r.json().unwrap()["pid"].as_u64().unwrap();
    let invoked = format!("[test-extension] INVOKE {}", r.request_id().unwrap());
    let line = emu
        .logs()
        .wait_for(PATIENCE, |l| l.starts_with(&invoked))
        .await
        .expect("the extension saw the invoke");
    let extension_pid: u64 = line
        .rsplit("pid=")
        .next()
        .and_then(|n| n.parse().ok())
        .expect("the extension's pid");
    let logs = emu.logs().clone();
    let began = epoch_ms();
    let shutdown = tokio::spawn(emu.shutdown());
    let runtime_gone = gone_at(runtime_pid).await;
    let extension_gone = gone_at(extension_pid).await;
    shutdown.await.unwrap();
    let sigterm_line = logs
        .wait_for(PATIENCE, |l| l.contains("got SIGTERM at "))
        .await
        .expect("the runtime got SIGTERM");
    let sigterm_at: u128 = sigterm_line
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap();
    let runtime_gap = runtime_gone - sigterm_at;
    let extension_gap = extension_gone - began;
    eprintln!(
        "SIGTERM to SIGKILL: {runtime_gap} ms; shutdown to extension SIGKILL: {extension_gap} ms"
    );
    // Lower bounds only: a loaded machine may be late, never early.
    assert!(
        runtime_gap >= 280,
        "the runtime was killed {runtime_gap} ms after SIGTERM"
    );
    assert!(
        extension_gap >= 1950,
        "the extension was killed after {extension_gap} ms"
    );
    assert!(
        logs.lines().iter().any(|l| l.contains("SHUTDOWN spindown")),
        "{:#?}",
        logs.lines()
    );
}

#[tokio::test]
async fn d7_an_invoke_body_that_is_not_json_is_refused_before_the_function_runs() {
    let emu = emulator("hello").start().await.unwrap();
    let r = emu.invoke("this is not json").await.unwrap();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.headers["x-amzn-errortype"],
        "InvalidRequestContentException"
    );
    assert!(
        r.json().unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with("Could not parse request body into json")
    );
    assert_eq!(
        init_count(&emu),
        0,
        "nothing was started for a refused request"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn d1_an_invoke_over_six_megabytes_is_refused_with_413() {
    let emu = emulator("test-function").start().await.unwrap();
    // 6 MiB + 1 byte of valid JSON: a string.
    let big = format!("\"{}\"", "a".repeat(6 * 1024 * 1024 - 1));
    let r = emu.invoke(big).await.unwrap();
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.headers["x-amzn-errortype"],
        "RequestEntityTooLargeException"
    );
    assert_eq!(init_count(&emu), 0);

    emu.shutdown().await;
}

#[tokio::test]
async fn d2_an_event_invocation_is_accepted_with_202_and_runs_in_the_background() {
    let emu = emulator("test-function").start().await.unwrap();
    let addr = emu.addr();
    let mut req = invoke_request(
        addr,
        "test-function",
        r#"{"action":"echo","value":"async"}"#,
    );
    req.headers_mut()
        .insert("x-amz-invocation-type", HeaderValue::from_static("Event"));
    let r = send(addr, req).await.unwrap();
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(r.body.is_empty());
    report_line(&emu, r.request_id().unwrap()).await;
    assert!(
        emu.logs()
            .lines()
            .iter()
            .any(|l| l.contains("echoing \"async\""))
    );
    emu.shutdown().await;
}

/// `X-Amz-Log-Type: Tail`: the answer carries the base64 of the invocation's last 4 KB of
/// log, from START through REPORT, with the function's own lines.
#[tokio::test]
async fn d4_a_tail_log_type_returns_the_invocation_log() {
    use base64::Engine;
    let emu = emulator("hello").start().await.unwrap();
    let mut request = invoke_request(emu.addr(), "hello", r#"{"name":"Ada"}"#);
    request
        .headers_mut()
        .insert("x-amz-log-type", HeaderValue::from_static("Tail"));
    let r = send(emu.addr(), request).await.unwrap();
    assert_eq!(r.json().unwrap(), json!({ "message": "Hello, Ada!" }));
    let encoded = r.headers["x-amz-log-result"].to_str().unwrap();
    let log = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let log = String::from_utf8(log).unwrap();
    let id = r.request_id().unwrap();
    assert!(log.starts_with(&format!("START RequestId: {id}")), "{log}");
    assert!(log.contains("greeting Ada"), "{log}");
    assert!(log.contains(&format!("\nREPORT RequestId: {id}")), "{log}");
    // Without the header there is no log in the answer.
    let r = emu.invoke("{}").await.unwrap();
    assert!(r.headers.get("x-amz-log-result").is_none());
    emu.shutdown().await;
}

/// An init that overruns the 10 s limit (here 1 s) is tried again inside the invoke, where
/// the invoke's timeout bounds it (protocol.md §3.1); a slow but working init then serves.
#[tokio::test]
async fn d8_an_init_that_overruns_its_limit_is_retried_inside_the_invoke() {
    let emu = emulator("test-function")
        .env("SLOW_INIT_MS", "1500")
        .init_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
    assert_eq!(r.json().unwrap(), json!({"echo": 1}));
    let lines = emu.logs().lines();
    let reports: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("INIT_REPORT"))
        .collect();
    assert_eq!(reports.len(), 1, "{lines:#?}");
    assert!(
        reports[0].ends_with("Phase: init\tStatus: timeout"),
        "{lines:#?}"
    );
    assert_eq!(init_count(&emu), 2);
    // START comes once, before the retried init.
    let id = r.request_id().unwrap();
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(&format!("START RequestId: {id}")))
        .map(|(n, _)| n)
        .collect();
    let second_init = lines
        .iter()
        .rposition(|l| l.starts_with("INIT_START"))
        .unwrap();
    assert_eq!(starts.len(), 1, "{lines:#?}");
    assert!(starts[0] < second_init, "{lines:#?}");
    emu.shutdown().await;
}

/// A retried init that overruns the invoke's own timeout ends the invoke as a timeout.
#[tokio::test]
async fn d8_a_retried_init_that_overruns_the_invoke_timeout_times_the_invoke_out() {
    let emu = emulator("test-function")
        .env("SLOW_INIT_MS", "120000")
        .init_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
    assert_timed_out(&emu, &r, "1.00").await;
    let lines = emu.logs().lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("INIT_REPORT") && l.ends_with("Phase: invoke\tStatus: timeout")),
        "{lines:#?}"
    );
    emu.shutdown().await;
}
