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

/// A tiny Runtime API on a std thread: answers every `/next` with 204 and no request id
/// (as cargo-lambda does when idle) for `empty_for` after the first one, then one event
/// whose id is 210 safe characters long, then nothing. Returns the port and, once the
/// function has answered the event, the `/next` calls counted and the path the answer
/// went to.
fn empty_then_long_id_api(
    empty_for: std::time::Duration,
) -> (u16, std::sync::mpsc::Receiver<(usize, String)>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let long_id = format!("{}-{}", "b".repeat(150), "c".repeat(59));
        let mut nexts = 0;
        let mut first: Option<std::time::Instant> = None;
        let mut served = false;
        let mut sock = listener.accept().unwrap().0;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            // One request head (and its small body) at a time.
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                match sock.read(&mut chunk) {
                    Ok(0) | Err(_) => {
                        // The function's connection closed: it may reconnect.
                        sock = listener.accept().unwrap().0;
                        buf.clear();
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                continue;
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
                let n = sock.read(&mut chunk).unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..end + 4 + body_len);
            let line = head.lines().next().unwrap_or_default().to_owned();
            if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
                nexts += 1;
                let since_first = first.get_or_insert_with(std::time::Instant::now).elapsed();
                if since_first < empty_for {
                    sock.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
                } else if !served {
                    served = true;
                    let event = r#"{"action":"echo","value":"long-id"}"#;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {long_id}\r\nLambda-Runtime-Deadline-Ms: 99999999999999\r\nContent-Length: {}\r\n\r\n{event}",
                        event.len()
                    );
                    sock.write_all(reply.as_bytes()).unwrap();
                }
                // Later /next calls stay open, as Lambda's do with no event waiting.
            } else {
                sock.write_all(
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}",
                )
                .unwrap();
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let _ = tx.send((nexts, path));
            }
        }
    });
    (port, rx)
}

/// `/next` answered 2xx without a request id: the runtime backs off instead of spinning,
/// then answers the next real event, even one whose id is much longer than a UUID.
#[test]
fn answers_without_a_request_id_are_skipped_with_backoff_and_long_ids_are_answered() {
    let (port, answered) = empty_then_long_id_api(std::time::Duration::from_millis(1200));
    let mut function = Command::new(binary("test-function"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let result = answered.recv_timeout(std::time::Duration::from_secs(60));
    let _ = function.kill();
    let _ = function.wait();
    let (nexts, path) = result.expect("the function answered the event");
    // For 1.2 s every answer was empty: backing off (50, 100, 200, 400, 800 ms) asks about
    // six times in that window; a loop that spins asks thousands of times.
    assert!(nexts <= 12, "/next was called {nexts} times in 1.2 s");
    assert_eq!(
        path,
        format!(
            "/2018-06-01/runtime/invocation/{}-{}/response",
            "b".repeat(150),
            "c".repeat(59)
        )
    );
}
