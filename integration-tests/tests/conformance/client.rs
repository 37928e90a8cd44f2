//! edge-cases.md §A, the client side: what a function built on ironlambda-runtime does
//! when the Runtime API answers in each listed way. The server is scripted byte for byte
//! (`scripted`), the function is the real `test-function` (or an example) process.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use base64::Engine;
use ironlambda_integration_tests::scripted::{
    ACCEPTED, Act, Request, event, event_with, reply, run_until, scripted_api, scripted_api_on,
    start_function, wait_for_exit,
};
use serde_json::Value;

/// Every request the scripted server saw, in order.
type Seen = Arc<Mutex<Vec<Request>>>;

fn seen() -> Seen {
    Arc::new(Mutex::new(Vec::new()))
}

fn all(seen: &Seen) -> Vec<Request> {
    seen.lock().unwrap().clone()
}

/// The `/response` or `/error` requests for `id`.
fn answers_for(seen: &Seen, id: &str) -> Vec<Request> {
    let prefix = format!("/2018-06-01/runtime/invocation/{id}/");
    all(seen)
        .into_iter()
        .filter(|r| r.path().starts_with(&prefix))
        .collect()
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// A server that hands out `events` in order (then holds `/next`), records everything,
/// answers results with `result_reply`, and says `done` once `last` was answered.
fn serve_events(
    events: Vec<Vec<u8>>,
    last: &str,
    result_reply: impl Fn(&Request) -> Vec<u8> + Send + 'static,
) -> (u16, Seen, mpsc::Receiver<()>) {
    let (tx, done) = mpsc::channel();
    let record = seen();
    let log = record.clone();
    let mut events = events.into_iter();
    let last = format!("/{last}/");
    let port = scripted_api(move |req| {
        log.lock().unwrap().push(req.clone());
        if req.is_next() {
            return events.next().map_or(Act::Hold, Act::Reply);
        }
        if req.path().contains(&last) {
            let _ = tx.send(());
        }
        Act::Reply(result_reply(req))
    });
    (port, record, done)
}

fn accepted(_: &Request) -> Vec<u8> {
    ACCEPTED.to_vec()
}

/// Runs `test-function` against a server that answers every `/next` with `answer`, until
/// the function exits by itself; returns its stderr and how many `/next` calls it made.
fn exit_under(answer: impl Fn() -> Act + Send + 'static) -> (String, usize, bool) {
    let nexts = Arc::new(Mutex::new(0usize));
    let count = nexts.clone();
    let port = scripted_api(move |req| {
        if req.is_next() {
            *count.lock().unwrap() += 1;
        }
        answer()
    });
    let out = wait_for_exit(start_function(
        "test-function",
        &format!("127.0.0.1:{port}"),
        &[],
    ));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let n = *nexts.lock().unwrap();
    (stderr, n, out.status.success())
}

#[test]
fn a1_next_answered_500_is_retried_a_few_times_then_the_process_exits_non_zero() {
    let (stderr, nexts, success) = exit_under(|| {
        Act::Reply(reply(
            "500 Internal Server Error",
            &[],
            r#"{"errorType":"InternalServerError","errorMessage":"no renderer"}"#,
        ))
    });
    assert!(!success, "{stderr}");
    assert!((2..=6).contains(&nexts), "/next was asked {nexts} times");
    assert!(stderr.contains("Runtime.ApiError"), "{stderr}");
    assert!(stderr.contains("500"), "{stderr}");
}

#[test]
fn a2_next_answered_403_stops_the_runtime_at_once() {
    let (stderr, nexts, success) = exit_under(|| {
        Act::Reply(reply(
            "403 Forbidden",
            &[],
            r#"{"errorType":"InvalidStateTransition","errorMessage":"State transition from InitError to Ready failed for runtime."}"#,
        ))
    });
    assert!(!success, "{stderr}");
    assert_eq!(nexts, 1, "a 403 is not retried");
    assert!(stderr.contains("InvalidStateTransition"), "{stderr}");
}

#[test]
fn a3_next_connection_dropped_is_retried_a_few_times_then_the_process_exits() {
    let (stderr, nexts, success) = exit_under(|| Act::Close);
    assert!(!success, "{stderr}");
    assert!((2..=6).contains(&nexts), "/next was asked {nexts} times");
}

#[test]
fn a4_the_runtime_answers_before_it_asks_for_the_next_event() {
    let (port, seen, done) = serve_events(vec![event("id-1"), event("id-2")], "id-2", accepted);
    assert!(run_until(port, done));
    let order: Vec<String> = all(&seen).iter().map(|r| r.path().to_owned()).collect();
    assert_eq!(
        &order[..4],
        [
            "/2018-06-01/runtime/invocation/next",
            "/2018-06-01/runtime/invocation/id-1/response",
            "/2018-06-01/runtime/invocation/next",
            "/2018-06-01/runtime/invocation/id-2/response",
        ]
    );
}

#[test]
fn a5_an_event_without_a_request_id_is_skipped_and_the_next_one_answered() {
    let no_id = reply(
        "200 OK",
        &[("Lambda-Runtime-Deadline-Ms", "99999999999999")],
        r#"{"action":"echo","value":"lost"}"#,
    );
    let empty_id = reply(
        "200 OK",
        &[("Lambda-Runtime-Aws-Request-Id", "")],
        r#"{"action":"echo","value":"lost"}"#,
    );
    let (port, seen, done) = serve_events(vec![no_id, empty_id, event("id-3")], "id-3", accepted);
    assert!(
        run_until(port, done),
        "the event after the bad ones was not answered"
    );
    let posted: Vec<Request> = all(&seen).into_iter().filter(|r| !r.is_next()).collect();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(json(&posted[0].body)["echo"], "id-3");
}

#[test]
fn a6_a_missing_or_unusable_deadline_reads_as_no_deadline_and_a_past_one_still_runs() {
    let context = r#"{"action":"context"}"#;
    let with_deadline = |id: &str, deadline: Option<&str>| {
        let mut headers = vec![("Lambda-Runtime-Aws-Request-Id", id)];
        if let Some(d) = deadline {
            headers.push(("Lambda-Runtime-Deadline-Ms", d));
        }
        reply("200 OK", &headers, context)
    };
    let cases = [
        ("missing", None, None),
        ("words", Some("soon"), None),
        ("overflow", Some("184467440737095516160"), None),
        ("past", Some("1"), Some(0)),
        ("cargo-lambda", Some("600000"), Some(0)),
    ];
    let events = cases
        .iter()
        .map(|(id, d, _)| with_deadline(id, *d))
        .collect();
    let (port, seen, done) = serve_events(events, "cargo-lambda", accepted);
    assert!(run_until(port, done));
    for (id, _, remaining) in cases {
        let answers = answers_for(&seen, id);
        assert_eq!(answers.len(), 1, "{id}");
        assert!(
            answers[0].path().ends_with("/response"),
            "{id}: {answers:?}"
        );
        assert_eq!(
            json(&answers[0].body)["remaining_ms"].as_u64(),
            remaining,
            "{id}"
        );
    }
}

#[test]
fn a7_optional_headers_may_be_missing_and_the_trace_variable_follows_the_event() {
    let traced = reply(
        "200 OK",
        &[
            ("Lambda-Runtime-Aws-Request-Id", "traced"),
            (
                "Lambda-Runtime-Trace-Id",
                "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            ),
        ],
        r#"{"action":"context"}"#,
    );
    let bare = reply(
        "200 OK",
        &[("Lambda-Runtime-Aws-Request-Id", "bare")],
        r#"{"action":"context"}"#,
    );
    let (port, seen, done) = serve_events(vec![traced, bare], "bare", accepted);
    assert!(run_until(port, done));
    let traced = json(&answers_for(&seen, "traced")[0].body);
    assert_eq!(
        traced["trace_env"],
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    );
    assert_eq!(traced["arn"], "");
    let bare = json(&answers_for(&seen, "bare")[0].body);
    assert_eq!(bare["trace_id"], Value::Null);
    assert_eq!(bare["trace_env"], Value::Null, "the variable was left set");
}

#[test]
fn a8_a_client_context_or_identity_that_is_not_json_does_not_fail_the_invocation() {
    let odd = reply(
        "200 OK",
        &[
            ("Lambda-Runtime-Aws-Request-Id", "odd"),
            ("Lambda-Runtime-Client-Context", "{not json"),
            ("Lambda-Runtime-Cognito-Identity", "%%%"),
        ],
        r#"{"action":"context"}"#,
    );
    let (port, seen, done) = serve_events(vec![odd], "odd", accepted);
    assert!(run_until(port, done));
    let answer = &answers_for(&seen, "odd")[0];
    assert!(answer.path().ends_with("/response"), "{answer:?}");
    assert_eq!(json(&answer.body)["client_context"], Value::Null);
}

#[test]
fn a9_a_body_that_is_empty_not_json_or_binary_fails_only_its_invocation() {
    let bodies: [&[u8]; 3] = [b"", b"not json", b"\xff\xfe\x00binary"];
    let mut events: Vec<Vec<u8>> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            let mut e = format!(
                "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: bad-{n}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            e.extend_from_slice(body);
            e
        })
        .collect();
    events.push(event("good"));
    let (port, seen, done) = serve_events(events, "good", accepted);
    assert!(run_until(port, done));
    for n in 0..3 {
        let answer = &answers_for(&seen, &format!("bad-{n}"))[0];
        assert!(answer.path().ends_with("/error"), "{answer:?}");
        assert_eq!(json(&answer.body)["errorType"], "Runtime.InvalidEvent");
    }
    assert!(answers_for(&seen, "good")[0].path().ends_with("/response"));
}

#[test]
fn a10_a_six_megabyte_chunked_event_is_read_whole() {
    let value = "x".repeat(6_000_000);
    let body = format!(r#"{{"action":"echo","value":"{value}"}}"#);
    let mut chunked =
        b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: big\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for piece in body.as_bytes().chunks(65_536) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (port, seen, done) = serve_events(vec![chunked], "big", accepted);
    assert!(run_until(port, done));
    let answer = json(&answers_for(&seen, "big")[0].body);
    assert_eq!(answer["echo"].as_str().map(str::len), Some(6_000_000));
}

/// A server that refuses the first invocation's result with `refusal`, then serves a
/// second event: the runtime logs the refusal, does not post again, and answers it.
fn refused_result_is_not_fatal(refusal: Vec<u8>) {
    let (port, seen, done) = serve_events(vec![event("id-1"), event("id-2")], "id-2", move |r| {
        if r.path().contains("/id-1/") {
            refusal.clone()
        } else {
            ACCEPTED.to_vec()
        }
    });
    assert!(run_until(port, done), "the second event was not answered");
    assert_eq!(
        answers_for(&seen, "id-1").len(),
        1,
        "the result was posted again"
    );
}

#[test]
fn a11_a_400_invalid_request_id_for_a_result_is_logged_and_the_loop_goes_on() {
    refused_result_is_not_fatal(reply(
        "400 Bad Request",
        &[],
        r#"{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}"#,
    ));
}

#[test]
fn a12_a_result_is_posted_once_and_a_403_for_it_is_not_fatal() {
    refused_result_is_not_fatal(reply(
        "403 Forbidden",
        &[],
        r#"{"errorType":"InvalidStateTransition","errorMessage":"State transition from ResponseSent to InvocationResponse failed for runtime."}"#,
    ));
}

#[test]
fn a13_a_410_invoke_timeout_for_a_late_result_is_not_fatal() {
    refused_result_is_not_fatal(reply(
        "410 Gone",
        &[],
        r#"{"errorType":"InvokeTimeout","errorMessage":"Invoke timeout"}"#,
    ));
}

#[test]
fn a14_a_413_for_an_oversized_response_is_not_retried() {
    let big = event_with("id-1", r#"{"action":"big","bytes":7000000}"#);
    let (port, seen, done) = serve_events(vec![big, event("id-2")], "id-2", |r| {
        if r.path().contains("/id-1/") {
            reply(
                "413 Request Entity Too Large",
                &[],
                r#"{"errorType":"RequestEntityTooLarge","errorMessage":"Exceeded maximum allowed payload size (6291556 bytes)."}"#,
            )
        } else {
            ACCEPTED.to_vec()
        }
    });
    assert!(run_until(port, done), "the second event was not answered");
    assert_eq!(
        answers_for(&seen, "id-1").len(),
        1,
        "the oversized answer was retried"
    );
}

/// Runs example `name` against a server that hands it `body` as event `id`; returns what
/// the function posted for it.
fn one_invocation_of(name: &str, id: &str, body: &str) -> Request {
    let (port, seen, done) = serve_events(vec![event_with(id, body)], id, accepted);
    let mut function = start_function(name, &format!("127.0.0.1:{port}"), &[]);
    let finished = done
        .recv_timeout(ironlambda_integration_tests::PATIENCE)
        .is_ok();
    let _ = function.kill();
    let _ = function.wait();
    assert!(finished, "{name} did not answer");
    answers_for(&seen, id).remove(0)
}

#[test]
fn a15_the_response_mode_header_is_exactly_streaming_and_only_on_streams() {
    let buffered = one_invocation_of("test-function", "b", r#"{"action":"echo","value":1}"#);
    assert_eq!(
        buffered.header("lambda-runtime-function-response-mode"),
        None
    );
    let streamed = one_invocation_of("stream", "s", r#"{"chunks":2,"chunk_bytes":3}"#);
    assert_eq!(
        streamed.header("lambda-runtime-function-response-mode"),
        Some("streaming")
    );
    assert_eq!(streamed.header("transfer-encoding"), Some("chunked"));
}

#[test]
fn a17_a_mid_stream_error_goes_out_as_declared_http_trailers() {
    let failed = one_invocation_of(
        "stream",
        "f",
        r#"{"chunks":3,"chunk_bytes":4,"fail_after":1}"#,
    );
    let declared = failed.header("trailer").unwrap_or_default().to_lowercase();
    assert!(
        declared.contains("lambda-runtime-function-error-type")
            && declared.contains("lambda-runtime-function-error-body"),
        "{declared}"
    );
    assert_eq!(failed.body.len(), 4, "the chunk sent before the error");
    let error_type = failed
        .trailer("lambda-runtime-function-error-type")
        .expect("an error type trailer");
    let body = base64::engine::general_purpose::STANDARD
        .decode(
            failed
                .trailer("lambda-runtime-function-error-body")
                .expect("an error body trailer"),
        )
        .expect("standard base64");
    let body = json(&body);
    assert_eq!(body["errorType"], error_type);
    assert!(body["errorMessage"].is_string(), "{body}");
}

#[test]
fn a18_an_http_integration_response_is_prelude_eight_nuls_then_the_body() {
    let page = one_invocation_of("function-url", "u", r#"{"lines":2}"#);
    let split = page
        .body
        .windows(8)
        .position(|w| w == [0u8; 8])
        .expect("eight NULs after the prelude");
    let prelude = json(&page.body[..split]);
    assert_eq!(prelude["statusCode"], 200);
    assert_eq!(prelude["cookies"][0], "visited=yes; Path=/; HttpOnly");
    assert_eq!(
        &page.body[split + 8..],
        b"line 1 of 2\nline 2 of 2\n".as_slice()
    );
}

#[test]
fn a19_an_error_body_is_json_with_message_type_and_stack_trace() {
    let failed = one_invocation_of(
        "test-function",
        "e",
        r#"{"action":"fail","message":"no stock"}"#,
    );
    assert!(failed.path().ends_with("/error"));
    assert_eq!(failed.header("content-type"), Some("application/json"));
    let body = json(&failed.body);
    assert_eq!(body["errorType"], "Function.Requested");
    assert_eq!(body["errorMessage"], "no stock");
    assert_eq!(body["stackTrace"], serde_json::json!([]));
}

#[test]
fn a20_an_error_type_header_is_visible_ascii_whatever_the_handler_wrote() {
    let failed = one_invocation_of(
        "test-function",
        "t",
        r#"{"action":"fail","message":"x","error_type":"Bad\u0007Type\u00e9 with\ttab"}"#,
    );
    let header = failed
        .header("lambda-runtime-function-error-type")
        .expect("an error type header");
    assert!(
        header.bytes().all(|b| b.is_ascii_graphic()),
        "{header:?} has bytes a header must not carry"
    );
    assert!(header.starts_with("Bad"), "{header}");
}

#[test]
fn a21_no_xray_error_cause_header_is_sent() {
    let failed = one_invocation_of(
        "test-function",
        "x",
        r#"{"action":"panic","message":"boom"}"#,
    );
    assert!(failed.path().ends_with("/error"));
    assert_eq!(
        failed.header("lambda-runtime-function-xray-error-cause"),
        None
    );
}

#[test]
fn a22_after_an_init_error_the_runtime_exits_without_asking_for_an_event() {
    let seen = seen();
    let log = seen.clone();
    let port = scripted_api(move |req| {
        log.lock().unwrap().push(req.clone());
        Act::Reply(ACCEPTED.to_vec())
    });
    let out = wait_for_exit(start_function(
        "test-function",
        &format!("127.0.0.1:{port}"),
        &[("FAIL_INIT", "no database")],
    ));
    assert!(!out.status.success());
    let requests = all(&seen);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path(), "/2018-06-01/runtime/init/error");
    assert_eq!(json(&requests[0].body)["errorMessage"], "no database");
}

#[test]
fn a26_every_runtime_api_address_shape_is_accepted() {
    for (bind, shape) in [
        ("127.0.0.1:0", "{addr}"),
        ("[::1]:0", "{addr}"),
        ("127.0.0.1:0", "http://{addr}/.rt/fn"),
    ] {
        let (tx, done) = mpsc::channel();
        let paths = seen();
        let log = paths.clone();
        let mut served = false;
        let Ok(probe) = std::net::TcpListener::bind(bind) else {
            eprintln!("note: {bind} is not available here; skipping that shape");
            continue;
        };
        drop(probe);
        let addr = scripted_api_on(bind, move |req| {
            log.lock().unwrap().push(req.clone());
            if req.path().ends_with("/invocation/next") {
                if served {
                    return Act::Hold;
                }
                served = true;
                return Act::Reply(event("id-1"));
            }
            let _ = tx.send(());
            Act::Reply(ACCEPTED.to_vec())
        });
        let api = shape.replace("{addr}", &addr.to_string());
        let mut function = start_function("test-function", &api, &[]);
        let answered = done
            .recv_timeout(ironlambda_integration_tests::PATIENCE)
            .is_ok();
        let _ = function.kill();
        let _ = function.wait();
        assert!(answered, "{api}: not answered");
        let prefix = if shape.contains("/.rt/fn") {
            "/.rt/fn/"
        } else {
            "/"
        };
        for r in all(&paths) {
            assert!(
                r.path().starts_with(&format!("{prefix}2018-06-01/")),
                "{api}: {}",
                r.path()
            );
        }
    }
}

#[test]
fn a27_any_header_case_duplicate_headers_and_closed_connections_are_handled() {
    let odd = b"HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: id-1\r\nLAMBDA-RUNTIME-AWS-REQUEST-ID: id-other\r\nLambda-Runtime-Deadline-Ms: 99999999999999\r\ncontent-length: 31\r\n\r\n{\"action\":\"echo\",\"value\":\"one\"}".to_vec();
    // Every result is answered with a close, as a server dropping idle connections does.
    let (tx, done) = mpsc::channel();
    let record = seen();
    let log = record.clone();
    let mut events = vec![odd, event("id-2")].into_iter();
    let port = scripted_api(move |req| {
        log.lock().unwrap().push(req.clone());
        if req.is_next() {
            return events.next().map_or(Act::Hold, Act::Reply);
        }
        if req.path().contains("/id-2/") {
            let _ = tx.send(());
        }
        Act::ReplyAndClose(
            b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}"
                .to_vec(),
        )
    });
    assert!(run_until(port, done), "the second event was not answered");
    let seen = record;
    assert_eq!(json(&answers_for(&seen, "id-1")[0].body)["echo"], "one");
    assert!(answers_for(&seen, "id-other").is_empty());
}
