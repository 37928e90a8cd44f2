//! How a function built on ironlambda-runtime behaves when its environment is broken:
//! clear errors and a non-zero exit, never a hang or a spin.

use std::process::{Command, Output};

use ironlambda_integration_tests::scripted::{ACCEPTED, Act, event, run_until, scripted_api};
use ironlambda_integration_tests::{binary, emulator};

fn run_function(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary("test-function"));
    cmd.env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn an_unreachable_runtime_api_is_retried_then_the_process_exits_non_zero() {
    // Bind and release a port so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run_function(&[("AWS_LAMBDA_RUNTIME_API", &format!("127.0.0.1:{port}"))]);
    assert!(!out.status.success());
    let text = all_output(&out);
    assert!(text.contains("attempt 1 of 6"), "{text}");
    assert!(
        text.contains("cannot get the next event, stopping the runtime"),
        "{text}"
    );
}

#[test]
fn a_malformed_runtime_api_address_is_a_clear_startup_error() {
    for value in ["", "https://127.0.0.1:9001", "127.0.0.1:notaport"] {
        let out = run_function(&[("AWS_LAMBDA_RUNTIME_API", value)]);
        assert!(!out.status.success(), "{value:?}");
        let text = all_output(&out);
        assert!(
            text.contains("invalid AWS_LAMBDA_RUNTIME_API value"),
            "{value:?}: {text}"
        );
        assert!(!text.contains("panicked"), "{text}");
    }
    let out = run_function(&[]);
    assert!(all_output(&out).contains("the variable is not set"));
}

#[tokio::test]
async fn bad_configuration_is_reported_as_an_init_error() {
    let emu = emulator("test-function")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")
        .start()
        .await
        .unwrap();
    let r = emu.invoke("{}").await.unwrap();
    assert_eq!(r.function_error(), Some("Unhandled"));
    let body = r.json().unwrap();
    assert_eq!(body["errorType"], "Runtime.InvalidConfig");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        "{body}"
    );
    emu.shutdown().await;
}

/// `/next` answered 2xx without a request id: the runtime backs off instead of spinning,
/// then answers the next real event, even one whose id is much longer than a UUID.
#[test]
fn answers_without_a_request_id_are_skipped_with_backoff_and_long_ids_are_answered() {
    let long_id = format!("{}-{}", "b".repeat(150), "c".repeat(59));
    let (tx, done) = std::sync::mpsc::channel();
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (nexts, answered) = (
        counted.clone(),
        std::sync::Arc::new(std::sync::Mutex::new(None)),
    );
    let answered_path = answered.clone();
    let mut first: Option<std::time::Instant> = None;
    let mut served = false;
    let port = scripted_api(move |req| {
        let line = req.line.as_str();
        if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
            nexts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // For 1.2 s every answer is empty, as cargo-lambda's are when idle.
            if first.get_or_insert_with(std::time::Instant::now).elapsed()
                < std::time::Duration::from_millis(1200)
            {
                return Act::Reply(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec());
            }
            if !served {
                served = true;
                return Act::Reply(event(&long_id));
            }
            return Act::Hold;
        }
        *answered_path.lock().unwrap() = line.split_whitespace().nth(1).map(str::to_owned);
        let _ = tx.send(());
        Act::Reply(ACCEPTED.to_vec())
    });
    assert!(
        run_until(port, done),
        "the function never answered the event"
    );
    let nexts = counted.load(std::sync::atomic::Ordering::SeqCst);
    // Backing off (50, 100, 200, 400, 800 ms) asks about six times in 1.2 s; a loop that
    // spins asks thousands of times.
    assert!(nexts <= 12, "/next was called {nexts} times in 1.2 s");
    assert_eq!(
        answered.lock().unwrap().as_deref(),
        Some(
            format!(
                "/2018-06-01/runtime/invocation/{}-{}/response",
                "b".repeat(150),
                "c".repeat(59)
            )
            .as_str()
        )
    );
}

/// The server closes the connection after reading a `/response`, without answering: the
/// runtime sends the result once more on a fresh connection, so the caller gets it.
#[test]
fn a_result_lost_with_its_connection_is_sent_once_more() {
    let (tx, done) = std::sync::mpsc::channel();
    let mut responses = Vec::new();
    let port = scripted_api(move |req| {
        let (conn, line) = (req.conn, req.line.as_str());
        if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
            return if conn == 0 {
                Act::Reply(event("id-1"))
            } else {
                Act::Hold
            };
        }
        responses.push(conn);
        if conn == 0 {
            // Read, then gone: the runtime cannot know whether it arrived.
            return Act::Close;
        }
        let _ = tx.send(());
        Act::Reply(ACCEPTED.to_vec())
    });
    assert!(
        run_until(port, done),
        "the result was not sent again on a fresh connection"
    );
}

/// A broken server answers `/response` twice. The extra 202 arrives where `/next`'s
/// answer was expected; the runtime keeps waiting for the event instead of polling again
/// (which, with a server that answers in order, would leave it one reply behind forever).
#[test]
fn an_extra_reply_does_not_swallow_the_next_event() {
    let (tx, done) = std::sync::mpsc::channel();
    let mut nexts = 0;
    let port = scripted_api(move |req| {
        let line = req.line.as_str();
        if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
            nexts += 1;
            return match nexts {
                1 => Act::Reply(event("id-1")),
                2 => Act::Reply(event("id-2")),
                _ => Act::Hold,
            };
        }
        if line.contains("/id-1/response") {
            // The answer, and one reply too many.
            let mut twice = ACCEPTED.to_vec();
            twice.extend_from_slice(ACCEPTED);
            return Act::Reply(twice);
        }
        if line.contains("/id-2/response") {
            let _ = tx.send(());
        }
        Act::Reply(ACCEPTED.to_vec())
    });
    assert!(run_until(port, done), "the second event was never answered");
}

/// A `Serialize` impl that panics half-way through the answer fails its invocation, and
/// the half-written bytes go nowhere: the next invocation is served on the same
/// connection (the answer is written into the connection's read buffer, so leftovers
/// would look like bytes from the server and cost a reconnect).
#[test]
fn a_serializer_panic_mid_answer_leaves_the_connection_clean() {
    use ironlambda_integration_tests::scripted::{event_with, run_until_value};
    let (tx, done) = std::sync::mpsc::channel();
    let mut events = vec![
        event_with("id-2", r#"{"action":"echo","value":"after"}"#),
        event_with("id-1", r#"{"action":"explode_in_serialize"}"#),
    ];
    let mut seen = Vec::new();
    let port = scripted_api(move |req| {
        seen.push((req.conn, req.line.clone()));
        if req.is_next() {
            return events.pop().map_or(Act::Hold, Act::Reply);
        }
        if req.line.contains("/id-2/response") {
            let _ = tx.send(seen.clone());
        }
        Act::Reply(ACCEPTED.to_vec())
    });
    let seen = run_until_value(port, done).expect("the function answered both events");
    assert!(
        seen.iter()
            .any(|(_, line)| line.contains("/invocation/id-1/error")),
        "{seen:#?}"
    );
    assert!(seen.iter().all(|(conn, _)| *conn == 0), "{seen:#?}");
}
