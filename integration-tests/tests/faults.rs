//! The emulator's fault mode, and our runtime under it: each injected fault is survived
//! as the conformance rules ask, and a seeded soak of random faults loses nothing.

use std::time::Duration;

use ironlambda_emulator::{Faults, invoke_request, send};
use ironlambda_integration_tests::{
    PATIENCE, binary, children_of, emulator, start_cli, status_kib,
};
use serde_json::{Value, json};

fn echo(value: &str) -> String {
    json!({"action": "echo", "value": value}).to_string()
}

async fn with_faults(specs: &[&str]) -> ironlambda_emulator::Emulator {
    let mut faults = Faults::none();
    for spec in specs {
        faults = faults.parse(spec).unwrap();
    }
    emulator("test-function")
        .timeout(Duration::from_secs(3))
        .faults(faults)
        .start()
        .await
        .unwrap()
}

/// edge-cases A1, A3: `/next` refused or cut off before any event is taken: the runtime
/// asks again, and the invocation is served.
#[tokio::test]
async fn next_refused_or_dropped_is_asked_again() {
    let emu = with_faults(&["next-500x2", "next-drop"]).await;
    let r = emu.invoke(echo("after faults")).await.unwrap();
    assert_eq!(r.json().unwrap(), json!({"echo": "after faults"}));
    emu.shutdown().await;
}

/// edge-cases A9: a truncated event fails that invocation with `Runtime.InvalidEvent`, and
/// the next one is served.
#[tokio::test]
async fn a_truncated_event_fails_only_its_invocation() {
    let emu = with_faults(&["truncate-event"]).await;
    let r = emu.invoke(echo("cut")).await.unwrap();
    assert_eq!(r.function_error(), Some("Unhandled"));
    assert_eq!(r.json().unwrap()["errorType"], "Runtime.InvalidEvent");
    let r = emu.invoke(echo("whole")).await.unwrap();
    assert_eq!(r.json().unwrap(), json!({"echo": "whole"}));
    emu.shutdown().await;
}

/// edge-cases A5, A4: an event without a request id cannot be answered, so the runtime
/// skips it and asks again; the emulator hands the same event out again (as RIE does for
/// a second `/next`), this time whole, and it is answered.
#[tokio::test]
async fn an_event_without_a_request_id_is_skipped_and_answered_when_delivered_again() {
    let emu = with_faults(&["omit-header=aws-request-id"]).await;
    let r = emu.invoke(echo("second delivery")).await.unwrap();
    assert_eq!(r.json().unwrap(), json!({"echo": "second delivery"}));
    let lines = emu.logs().lines();
    assert!(
        lines.iter().any(|l| l.contains("skipping an event")),
        "{lines:#?}"
    );
    emu.shutdown().await;
}

/// edge-cases A6: a deadline no one can read means "no deadline", not a failure.
#[tokio::test]
async fn a_corrupt_deadline_reads_as_no_deadline() {
    let emu = with_faults(&["corrupt-header=deadline-ms"]).await;
    let r = emu
        .invoke(r#"{"action":"context"}"#)
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["remaining_ms"], Value::Null);
    emu.shutdown().await;
}

/// edge-cases A11–A14: `/response` refused with any of Lambda's statuses: the runtime
/// logs it and goes on to the next event (the caller got the result: the fault only
/// changes what the runtime hears).
#[tokio::test]
async fn refused_results_do_not_stop_the_runtime() {
    let emu = with_faults(&[
        "response-400",
        "response-403",
        "response-410",
        "response-413",
        "response-500",
    ])
    .await;
    for i in 0..6 {
        let value = format!("answer {i}");
        let r = emu.invoke(echo(&value)).await.unwrap();
        assert_eq!(r.json().unwrap(), json!({"echo": value}));
    }
    let lines = emu.logs().lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Lambda refused the result")),
        "{lines:#?}"
    );
    emu.shutdown().await;
}

/// edge-cases A27: delays and connections closed after every answer (no keep-alive).
#[tokio::test]
async fn slow_answers_and_closed_connections_are_served() {
    let emu = with_faults(&["delay=30", "close"]).await;
    for i in 0..5 {
        let value = format!("v{i}");
        let r = emu.invoke(echo(&value)).await.unwrap();
        assert_eq!(r.json().unwrap(), json!({"echo": value}));
    }
    emu.shutdown().await;
}

/// A seeded soak: invocations from 4 callers against random faults on the Runtime API
/// (300 in `make test`; `IRONLAMBDA_SOAK=10000` for the long run). Every invocation is
/// answered with its own value (or, for a truncated event, with `Runtime.InvalidEvent`),
/// nothing is lost or crossed, memory stays flat, and no process outlives the emulator.
#[tokio::test]
async fn a_seeded_soak_of_random_faults_loses_nothing() {
    let total: usize = std::env::var("IRONLAMBDA_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let function = binary("test-function");
    let mut cli = start_cli(&[
        "--function".as_ref(),
        function.as_os_str(),
        "--fault".as_ref(),
        "random=42:10".as_ref(),
    ])
    .await;
    let addr = cli.addr;
    let emulator_pid = cli.child.id().unwrap();
    let callers = 4;
    let mut rss = Vec::new();
    let mut answered = 0;
    let mut invalid = 0;
    for round in 0..4 {
        let mut tasks = Vec::new();
        for caller in 0..callers {
            let per = total / 4 / callers;
            tasks.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..per {
                    let value = format!("r{round}-c{caller}-{i}");
                    let r = send(addr, invoke_request(addr, "test-function", echo(&value)))
                        .await
                        .unwrap();
                    outcomes.push((value, r.json().unwrap_or(Value::Null)));
                }
                outcomes
            }));
        }
        for task in tasks {
            for (value, body) in tokio::time::timeout(PATIENCE * 4, task)
                .await
                .unwrap()
                .unwrap()
            {
                if body == json!({"echo": value}) {
                    answered += 1;
                } else if body["errorType"] == "Runtime.InvalidEvent" {
                    invalid += 1;
                } else {
                    panic!("{value} was answered with {body}");
                }
            }
        }
        let function_pid = children_of(emulator_pid).into_iter().find(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == function)
        });
        rss.push((
            status_kib(emulator_pid, "VmRSS"),
            function_pid.map_or(0, |pid| status_kib(pid, "VmRSS")),
        ));
    }
    let sent = total / 4 / callers * callers * 4;
    assert_eq!(
        answered + invalid,
        sent,
        "{answered} answered + {invalid} invalid"
    );
    assert!(invalid < sent / 4, "{invalid} truncated events of {sent}");
    // Flat: the last quarter holds no more than the first plus a little.
    let (first, last) = (rss[0], rss[3]);
    assert!(last.0 < first.0 + 8 * 1024, "emulator grew: {rss:?}");
    assert!(last.1 < first.1 + 4 * 1024, "function grew: {rss:?}");
    let children = children_of(emulator_pid);
    // SAFETY: plain FFI call: SIGTERM to our own child.
    unsafe { libc::kill(emulator_pid as libc::pid_t, libc::SIGTERM) };
    let status = tokio::time::timeout(PATIENCE, cli.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    for pid in children {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s
                    .rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))),
            "process {pid} outlived the emulator"
        );
    }
}
