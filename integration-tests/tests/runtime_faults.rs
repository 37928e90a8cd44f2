//! How a function built on ironlambda-runtime behaves when its environment is broken:
//! clear errors and a non-zero exit, never a hang or a spin.

use std::process::{Command, Output};

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

/// What a scripted Runtime API does with one request.
enum Act {
    /// Write these bytes (one reply, or several).
    Reply(Vec<u8>),
    /// Close the connection without answering.
    Close,
    /// Answer nothing (a long-poll with no event), and stop reading this connection.
    Hold,
}

/// A Runtime API on a std thread that reads requests one at a time, in order, as Go's
/// server does, and lets `script` decide each answer from the connection's number (0, 1,
/// …) and the request line. Runs until the test process ends.
fn scripted_api(mut script: impl FnMut(usize, &str) -> Act + Send + 'static) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (n, sock) in listener.incoming().enumerate() {
            let Ok(mut sock) = sock else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            'requests: loop {
                // One request head, and its body, at a time.
                let end = loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end;
                    }
                    match sock.read(&mut chunk) {
                        Ok(0) | Err(_) => break 'requests,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let body_len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                while buf.len() < end + 4 + body_len {
                    match sock.read(&mut chunk) {
                        Ok(0) | Err(_) => break 'requests,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                }
                buf.drain(..end + 4 + body_len);
                match script(n, head.lines().next().unwrap_or_default()) {
                    Act::Reply(bytes) => {
                        if sock.write_all(&bytes).is_err() {
                            break;
                        }
                    }
                    Act::Close => break,
                    Act::Hold => {
                        // Keep the connection open, as a long-poll with no event does.
                        std::thread::sleep(std::time::Duration::from_secs(3600));
                    }
                }
            }
        }
    });
    port
}

/// A `/next` answer carrying an echo event for `id`.
fn event(id: &str) -> Vec<u8> {
    let body = format!(r#"{{"action":"echo","value":"{id}"}}"#);
    format!(
        "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: 99999999999999\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const ACCEPTED: &[u8] = b"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}";

/// Runs `test-function` against the Runtime API on `port` until `done` says so (or a
/// minute passes), then ends it.
fn run_until(port: u16, done: std::sync::mpsc::Receiver<()>) -> bool {
    let mut function = Command::new(binary("test-function"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let finished = done
        .recv_timeout(std::time::Duration::from_secs(60))
        .is_ok();
    let _ = function.kill();
    let _ = function.wait();
    finished
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
    let port = scripted_api(move |_, line| {
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
    let port = scripted_api(move |conn, line| {
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
    let port = scripted_api(move |_, line| {
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
