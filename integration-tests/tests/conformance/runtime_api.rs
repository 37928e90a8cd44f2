//! edge-cases.md §A, the emulator side: its Runtime API answers as production does. Where
//! the row is about the Runtime API's answers, the test plays the runtime itself with the
//! api-client while the emulator's launched process stays idle; where it is about the
//! lifecycle, a real function runs.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use ironlambda_api_client::ApiError;
use ironlambda_emulator::{invoke_request, send};
use ironlambda_integration_tests::streams::{expected, read_all};
use ironlambda_integration_tests::{
    PATIENCE, assert_timed_out, emulator, error_of, idle_emulator, init_count,
    invoke_in_background, report_line,
};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::Runtime;

fn error_type(e: &ApiError) -> &str {
    &e.body().unwrap().error_type
}

#[tokio::test]
async fn a11_a_result_for_an_unknown_request_id_is_refused_400_invalid_request_id() {
    let emu = idle_emulator().await;
    let mut rt = Runtime::new(&emu);
    let call = invoke_in_background(&emu, "1");
    let (headers, _) = rt.next().await;
    let e = rt.respond("not-the-current-id", "{}").await.unwrap_err();
    assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
    assert_eq!(error_type(&e), "InvalidRequestID");
    // The invocation itself is untouched.
    rt.respond(&headers.request_id, "2").await.unwrap();
    assert_eq!(call.await.unwrap().body, "2");
    rt.release(emu).await;
}

#[tokio::test]
async fn a12_a_second_result_is_refused_403_before_the_next_poll_and_400_after() {
    let emu = idle_emulator().await;
    let mut rt = Runtime::new(&emu);
    let call = invoke_in_background(&emu, "1");
    let (headers, _) = rt.next().await;
    let id = headers.request_id;
    assert_eq!(rt.respond(&id, "2").await.unwrap(), r#"{"status":"OK"}"#);
    assert_eq!(call.await.unwrap().body, "2");
    let e = rt.respond(&id, "3").await.unwrap_err();
    assert!(matches!(e, ApiError::Forbidden(_)), "{e:?}");
    assert_eq!(error_type(&e), "InvalidStateTransition");
    let e = rt.fail(&id, "Function.Late", b"").await.unwrap_err();
    assert_eq!(error_type(&e), "InvalidStateTransition");
    // Init is long over: /init/error is refused the same way.
    let e = rt
        .client
        .send(rt.api.init_error("Runtime.Late", Bytes::new()))
        .await
        .unwrap_err();
    assert_eq!(error_type(&e), "InvalidStateTransition");
    // After the next poll the invocation is released: the id is unknown.
    let second = invoke_in_background(&emu, "4");
    let (next, _) = rt.next().await;
    let e = rt.respond(&id, "5").await.unwrap_err();
    assert_eq!(error_type(&e), "InvalidRequestID");
    rt.respond(&next.request_id, "6").await.unwrap();
    assert_eq!(second.await.unwrap().body, "6");
    rt.release(emu).await;
}

#[tokio::test]
async fn a13_a_result_after_the_deadline_is_refused_as_an_unknown_request_id() {
    let emu = emulator("test-function")
        .env("IDLE", "1")
        .eager_init(true)
        .timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let mut rt = Runtime::new(&emu);
    let call = invoke_in_background(&emu, "1");
    let (headers, _) = rt.next().await;
    let timed_out = call.await.unwrap();
    assert_eq!(timed_out.json().unwrap()["errorType"], "Sandbox.Timedout");
    let e = rt.respond(&headers.request_id, "2").await.unwrap_err();
    assert!(matches!(e, ApiError::BadRequest(_)), "{e:?}");
    assert_eq!(error_type(&e), "InvalidRequestID");
    rt.release(emu).await;
}

#[tokio::test]
async fn a14_an_oversized_response_is_refused_413_and_the_caller_gets_response_size_too_large() {
    let emu = idle_emulator().await;
    let mut rt = Runtime::new(&emu);
    let call = invoke_in_background(&emu, "1");
    let (headers, _) = rt.next().await;
    let e = rt
        .respond(&headers.request_id, vec![b'x'; 6_291_557])
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::PayloadTooLarge(_)), "{e:?}");
    assert_eq!(error_type(&e), "RequestEntityTooLarge");
    let answer = call.await.unwrap();
    assert_eq!(answer.function_error(), Some("Unhandled"));
    assert_eq!(
        answer.json().unwrap()["errorType"],
        "Function.ResponseSizeTooLarge"
    );
    // The runtime state moved on: the next poll gets the next event.
    let second = invoke_in_background(&emu, "2");
    let (next, body) = rt.next().await;
    assert_eq!(body, "2");
    rt.respond(&next.request_id, "3").await.unwrap();
    assert_eq!(second.await.unwrap().body, "3");
    rt.release(emu).await;
}

#[tokio::test]
async fn a15_a_response_mode_other_than_streaming_is_refused_400() {
    let emu = idle_emulator().await;
    let mut rt = Runtime::new(&emu);
    let call = invoke_in_background(&emu, "1");
    let (headers, _) = rt.next().await;
    for mode in ["buffered", "Streaming"] {
        let mut req = rt
            .api
            .response(
                &headers.request_id,
                Bytes::from_static(b"{}"),
                "application/json",
            )
            .unwrap();
        req.headers_mut().insert(
            "lambda-runtime-function-response-mode",
            HeaderValue::from_static(mode),
        );
        let e = rt.client.send(req).await.unwrap_err();
        assert_eq!(e.status(), Some(StatusCode::BAD_REQUEST), "{mode}");
        assert_eq!(error_type(&e), "InvalidFunctionResponseMode", "{mode}");
    }
    rt.respond(&headers.request_id, "2").await.unwrap();
    assert_eq!(call.await.unwrap().body, "2");
    rt.release(emu).await;
}

#[tokio::test]
async fn a16_a_response_body_cut_off_fails_the_invocation_instead_of_hanging() {
    let emu = idle_emulator().await;
    let mut rt = Runtime::new(&emu);
    let call = invoke_in_background(&emu, "1");
    let (headers, _) = rt.next().await;
    let mut sock = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    let head = format!(
        "POST /2018-06-01/runtime/invocation/{}/response HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"cut",
        headers.request_id
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    drop(sock);
    let answer = tokio::time::timeout(PATIENCE, call)
        .await
        .expect("the caller is answered")
        .unwrap();
    assert_eq!(answer.function_error(), Some("Unhandled"));
    assert_eq!(
        answer.json().unwrap()["errorType"],
        "Runtime.TruncatedResponse"
    );
    rt.release(emu).await;
}

#[tokio::test]
async fn a19_an_error_body_is_passed_on_unchanged_and_an_empty_one_is_built_from_the_header() {
    let emu = idle_emulator().await;
    let mut rt = Runtime::new(&emu);
    let call = invoke_in_background(&emu, "1");
    let (headers, _) = rt.next().await;
    rt.fail(
        &headers.request_id,
        "Function.Odd",
        br#"{"errorType":"Function.Odd","errorMessage":"as sent","extra":[1]}"#,
    )
    .await
    .unwrap();
    let answer = call.await.unwrap();
    assert_eq!(answer.function_error(), Some("Unhandled"));
    assert_eq!(
        answer.json().unwrap(),
        json!({"errorType":"Function.Odd","errorMessage":"as sent","extra":[1]})
    );

    let call = invoke_in_background(&emu, "2");
    let (headers, _) = rt.next().await;
    rt.fail(&headers.request_id, "Function.NoBody", b"")
        .await
        .unwrap();
    let answer = call.await.unwrap();
    assert_eq!(answer.function_error(), Some("Unhandled"));
    assert_eq!(answer.json().unwrap()["errorType"], "Function.NoBody");
    rt.release(emu).await;
}

#[tokio::test]
async fn a28_a_caller_that_disconnects_does_not_cancel_the_invocation() {
    let emu = emulator("test-function").start().await.unwrap();
    let call = invoke_in_background(&emu, r#"{"action":"sleep","ms":300}"#);
    // Give the invocation time to start, then hang up.
    emu.logs()
        .wait_for(PATIENCE, |l| l.starts_with("START RequestId"))
        .await
        .expect("the invocation started");
    call.abort();
    let report = emu
        .logs()
        .wait_for(PATIENCE, |l| l.starts_with("REPORT RequestId"))
        .await
        .expect("the invocation ran to its end");
    assert!(!report.contains("Status:"), "{report}");
    let r = emu
        .invoke(r#"{"action":"echo","value":"next"}"#)
        .await
        .unwrap();
    assert_eq!(r.json().unwrap(), json!({"echo": "next"}));
    assert_eq!(init_count(&emu), 1);
    emu.shutdown().await;
}

/// An init that fails is tried once more inside the invoke that was waiting for it
/// (a suppressed init); when that fails too, the invoke gets the init error.
#[tokio::test]
async fn a22_an_init_failure_is_retried_inside_the_invoke_then_answered() {
    let emu = emulator("test-function")
        .env("FAIL_INIT", "no database")
        .start()
        .await
        .unwrap();
    let r = emu.invoke(r#"{"action":"echo","value":1}"#).await.unwrap();
    assert_eq!(r.function_error(), Some("Unhandled"));
    assert_eq!(
        error_of(&r.json().unwrap()),
        ("Function.InitFailed", "no database")
    );
    let report = report_line(&emu, r.request_id().unwrap()).await;
    assert!(
        report.ends_with("Status: error\tError Type: Runtime.InitError"),
        "{report}"
    );
    let reports: Vec<String> = emu
        .logs()
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("INIT_REPORT"))
        .collect();
    assert_eq!(reports.len(), 2, "{reports:#?}");
    assert!(
        reports[0].contains("Phase: init\tStatus: error"),
        "{reports:#?}"
    );
    assert!(
        reports[1].contains("Phase: invoke\tStatus: error"),
        "{reports:#?}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a23_a_runtime_crash_fails_its_invocation_and_the_next_invoke_starts_a_new_runtime() {
    let emu = emulator("test-function").start().await.unwrap();
    let r = emu.invoke(r#"{"action":"exit","code":3}"#).await.unwrap();
    assert_eq!(r.function_error(), Some("Unhandled"));
    let body = r.json().unwrap();
    let (error_type, message) = error_of(&body);
    assert_eq!(error_type, "Runtime.ExitError");
    assert_eq!(
        message,
        format!(
            "RequestId: {} Error: Runtime exited with error: exit status 3",
            r.request_id().unwrap()
        )
    );

    let r = emu.invoke(r#"{"action":"exit","code":0}"#).await.unwrap();
    let body = r.json().unwrap();
    assert!(
        error_of(&body)
            .1
            .ends_with("Runtime exited without providing a reason"),
        "{body}"
    );

    let r = emu
        .invoke(r#"{"action":"echo","value":"alive"}"#)
        .await
        .unwrap();
    assert_eq!(r.json().unwrap(), json!({ "echo": "alive" }));
    assert_eq!(init_count(&emu), 3);
    emu.shutdown().await;
}

#[tokio::test]
async fn a24_a_timeout_answers_the_caller_and_the_next_invoke_starts_the_runtime_again() {
    let emu = emulator("test-function")
        .timeout(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let r = emu
        .invoke(r#"{"action":"sleep","ms":120000}"#)
        .await
        .unwrap();
    assert_timed_out(&emu, &r, "1.00").await;

    let r = emu
        .invoke(r#"{"action":"echo","value":"after"}"#)
        .await
        .unwrap();
    assert_eq!(r.json().unwrap(), json!({ "echo": "after" }));
    assert_eq!(init_count(&emu), 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn a25_concurrent_invokes_against_one_environment_are_queued_and_all_answered() {
    let emu = emulator("test-function").start().await.unwrap();
    let addr = emu.addr();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            tokio::spawn(async move {
                let payload = json!({ "action": "echo", "value": i }).to_string();
                let r = send(addr, invoke_request(addr, "test-function", payload))
                    .await
                    .unwrap();
                (i, r)
            })
        })
        .collect();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json().unwrap(), json!({ "echo": i }));
    }
    assert_eq!(init_count(&emu), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn a17_a_mid_stream_error_reaches_a_streaming_caller_after_the_bytes_already_sent() {
    let emu = emulator("stream").start().await.unwrap();
    let events = emu
        .invoke_stream(json!({"chunks": 10, "chunk_bytes": 5, "fail_after": 3}).to_string())
        .await
        .unwrap();
    let (payload, complete) = read_all(events).await;
    assert_eq!(payload, expected(3, 5));
    assert_eq!(
        complete,
        json!({"ErrorCode": "StreamInterrupted", "ErrorDetails": "stopped after 3 chunks"})
    );
    // The environment goes on: the next invoke streams whole.
    let (payload, _) = read_all(
        emu.invoke_stream(json!({"chunks": 2, "chunk_bytes": 2}).to_string())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(payload, b"aabb");
    emu.shutdown().await;
}

#[tokio::test]
async fn a4_a_next_before_answering_gets_the_same_event_again() {
    let emu = idle_emulator().await;
    let mut rt = Runtime::new(&emu);
    let a = invoke_in_background(&emu, json!({"n": 1}).to_string());
    let (first, _) = rt.next().await;
    let (again, body) = rt.next().await;
    assert_eq!(first.request_id, again.request_id);
    assert_eq!(body, r#"{"n":1}"#);
    rt.respond(&first.request_id, "1").await.unwrap();
    assert_eq!(a.await.unwrap().body, "1");
    rt.release(emu).await;
}

/// A control character in the error type header is refused with 400 before anything
/// else, as Go's server does; the invocation still waits for a usable answer.
#[tokio::test]
async fn a20_an_error_type_header_with_control_characters_is_refused_400() {
    use tokio::io::AsyncReadExt;
    let emu = idle_emulator().await;
    let mut rt = Runtime::new(&emu);
    let call = invoke_in_background(&emu, "1");
    let (headers, _) = rt.next().await;
    let mut sock = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    let request = format!(
        "POST /2018-06-01/runtime/invocation/{}/error HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Error-Type: Bad\x07Type\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        headers.request_id
    );
    sock.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, sock.read_to_end(&mut answer))
        .await
        .expect("the emulator answers")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    rt.respond(&headers.request_id, "2").await.unwrap();
    assert_eq!(call.await.unwrap().body, "2");
    rt.release(emu).await;
}

/// The Function URL front door reads a streamed HTTP-integration answer from the byte
/// stream, not from frames: here the prelude and its 8 NULs arrive split across chunked
/// frames, with the body's first bytes in the separator's frame.
#[tokio::test]
async fn a18_a_prelude_split_across_chunks_is_read_from_the_byte_stream() {
    use tokio::io::AsyncReadExt;
    let emu = emulator("test-function")
        .env("IDLE", "1")
        .eager_init(true)
        .url_port(0)
        .start()
        .await
        .unwrap();
    let url: std::net::SocketAddr = emu
        .function_url()
        .unwrap()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let mut rt = Runtime::new(&emu);
    let caller = tokio::spawn(async move {
        let mut sock = tokio::net::TcpStream::connect(url).await.unwrap();
        sock.write_all(b"GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, sock.read_to_end(&mut answer))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8(answer).unwrap()
    });
    let (headers, event) = rt.next().await;
    let event: serde_json::Value = serde_json::from_slice(&event).unwrap();
    assert_eq!(event["rawPath"], "/page");
    let frames: [&[u8]; 4] = [
        br#"{"statusCode":201,"head"#,
        b"ers\":{\"x-a\":\"1\"},\"cookies\":[\"c=1\",\"d=2\"]}\0\0\0",
        b"\0\0\0\0\0<h1>",
        b"hi</h1>",
    ];
    let mut body = Vec::new();
    for f in frames {
        body.extend_from_slice(format!("{:x}\r\n", f.len()).as_bytes());
        body.extend_from_slice(f);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut sock = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    let head = format!(
        "POST /2018-06-01/runtime/invocation/{}/response HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Response-Mode: streaming\r\nContent-Type: application/vnd.awslambda.http-integration-response\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        headers.request_id
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&body).await.unwrap();
    let answer = caller.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("x-a: 1\r\n"), "{answer}");
    assert!(
        answer.contains("set-cookie: c=1\r\n") && answer.contains("set-cookie: d=2\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("<h1>") && answer.contains("hi</h1>"),
        "{answer}"
    );
    rt.release(emu).await;
}
