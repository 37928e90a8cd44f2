//! Streamed responses end to end: `examples/src/bin/stream.rs` (and friends) as real
//! processes under the emulator, read through both invoke endpoints over real HTTP.
//! The stream example's event contract: `{"chunks": N, "chunk_bytes": S}` streams N chunks
//! of S bytes, chunk `i` repeating `b'a' + i % 26`; `"fail_after": K` fails after K chunks
//! with `StreamInterrupted`; `"interval_ms"` spaces the chunks.

use http::StatusCode;
use ironlambda_emulator::{invoke_stream_request, send_streaming};
use ironlambda_integration_tests::streams::{expected, read_all};
use ironlambda_integration_tests::{binary, children_of, emulator, peak_rss_kib, start_cli};
use serde_json::{Value, json};

#[tokio::test]
async fn a_streamed_response_arrives_byte_exact_and_in_order() {
    let emu = emulator("stream").start().await.unwrap();
    let events = emu
        .invoke_stream(json!({"chunks": 40, "chunk_bytes": 1000}).to_string())
        .await
        .unwrap();
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(
        events.headers["content-type"],
        "application/vnd.amazon.eventstream"
    );
    assert_eq!(events.headers["x-amz-executed-version"], "$LATEST");
    let (payload, complete) = read_all(events).await;
    assert!(
        payload == expected(40, 1000),
        "{} bytes differ",
        payload.len()
    );
    assert_eq!(complete, json!({}));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_mid_stream_error_reaches_a_buffered_caller_as_a_function_error() {
    let emu = emulator("stream").start().await.unwrap();
    let r = emu
        .invoke(json!({"chunks": 10, "chunk_bytes": 5, "fail_after": 3}).to_string())
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.function_error(), Some("Unhandled"));
    let error = r.json().unwrap();
    assert_eq!(error["errorType"], "StreamInterrupted");
    assert_eq!(error["errorMessage"], "stopped after 3 chunks");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_buffered_invoke_of_a_streaming_function_answers_buffered() {
    let emu = emulator("stream").start().await.unwrap();
    let r = emu
        .invoke(json!({"chunks": 30, "chunk_bytes": 100}).to_string())
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.function_error(), None);
    assert_eq!(r.headers["content-type"], "application/octet-stream");
    assert!(r.body == expected(30, 100));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_buffered_invoke_cuts_a_stream_at_the_buffered_limit() {
    let emu = emulator("stream").start().await.unwrap();
    // 8 MiB streamed; the buffered answer stops at 6,291,556 bytes.
    let r = emu
        .invoke(json!({"chunks": 128, "chunk_bytes": 65536}).to_string())
        .await
        .unwrap();
    assert_eq!(r.function_error(), None);
    assert_eq!(r.body.len(), 6_291_556);
    assert!(r.body[..] == expected(128, 65536)[..6_291_556]);
    emu.shutdown().await;
}

#[tokio::test]
async fn a_streaming_invoke_of_a_buffered_function_gets_the_payload_as_one_chunk() {
    let emu = emulator("hello").start().await.unwrap();
    let mut events = emu.invoke_stream(r#"{"name":"Ada"}"#).await.unwrap();
    let first = events.next_event().await.unwrap().unwrap();
    assert_eq!(first.header(":event-type"), Some("PayloadChunk"));
    assert_eq!(
        serde_json::from_slice::<Value>(&first.payload).unwrap(),
        json!({"message": "Hello, Ada!"})
    );
    let (rest, complete) = read_all(events).await;
    assert!(rest.is_empty());
    assert_eq!(complete, json!({}));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_streaming_invoke_of_a_failing_buffered_function_ends_with_its_error() {
    let emu = emulator("order").start().await.unwrap();
    let events = emu
        .invoke_stream(r#"{"item":"coffee","quantity":"1"}"#)
        .await
        .unwrap();
    let (payload, complete) = read_all(events).await;
    assert!(payload.is_empty());
    assert_eq!(
        complete,
        json!({"ErrorCode": "UnknownItem", "ErrorDetails": "we do not sell \"coffee\""})
    );
    emu.shutdown().await;
}

/// The first chunk reaches the caller while the function is still producing: the stream
/// has not ended (no END line) when it arrives. The chunks are 1.5 s apart, so a server
/// that buffered the stream could not pass.
#[tokio::test]
async fn chunks_reach_the_caller_while_the_function_is_still_streaming() {
    let emu = emulator("stream").start().await.unwrap();
    let mut events = emu
        .invoke_stream(json!({"chunks": 3, "chunk_bytes": 4, "interval_ms": 1500}).to_string())
        .await
        .unwrap();
    let first = events.next_event().await.unwrap().unwrap();
    assert_eq!(first.payload, "aaaa");
    let lines = emu.logs().lines();
    assert!(
        lines.iter().any(|l| l.starts_with("START RequestId")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("END RequestId")),
        "the invocation had already ended when its first chunk arrived: {lines:#?}"
    );
    let (rest, complete) = read_all(events).await;
    assert_eq!(rest, b"bbbbcccc");
    assert_eq!(complete, json!({}));
    emu.shutdown().await;
}

/// 100 MiB streamed through the emulator command: the function and the emulator each keep
/// a peak resident size far below the size of the response.
#[tokio::test]
async fn a_100_mib_stream_keeps_function_and_emulator_memory_bounded() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: u64 = 1600;
    let function = binary("stream");
    let cli = start_cli(&["--function".as_ref(), function.as_os_str()]).await;
    let addr = cli.addr;
    let request = invoke_stream_request(
        addr,
        "stream",
        json!({"chunks": CHUNKS, "chunk_bytes": CHUNK}).to_string(),
    );
    let mut events = send_streaming(addr, request).await.unwrap();
    let mut offset = 0usize;
    let mut complete = None;
    while let Some(event) = events.next_event().await.unwrap() {
        if event.header(":event-type") == Some("InvokeComplete") {
            complete = Some(event.payload.clone());
            continue;
        }
        for (i, byte) in event.payload.iter().enumerate() {
            let want = b'a' + (((offset + i) / CHUNK) % 26) as u8;
            assert_eq!(*byte, want, "byte {} differs", offset + i);
        }
        offset += event.payload.len();
    }
    assert_eq!(offset, CHUNK * CHUNKS as usize);
    assert_eq!(complete.as_deref(), Some(&b"{}"[..]));

    let emulator_pid = cli.child.id().expect("the emulator is running");
    let function_pid = children_of(emulator_pid)
        .into_iter()
        .find(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == function))
        .expect("the function process is a child of the emulator");
    let function_kib = peak_rss_kib(function_pid);
    let emulator_kib = peak_rss_kib(emulator_pid);
    eprintln!(
        "100 MiB streamed: function peak {function_kib} KiB, emulator peak {emulator_kib} KiB"
    );
    assert!(
        function_kib < 16 * 1024,
        "the function peaked at {function_kib} KiB"
    );
    assert!(
        emulator_kib < 48 * 1024,
        "the emulator peaked at {emulator_kib} KiB"
    );
}

/// `X-Amz-Log-Type: Tail` on a streaming invoke: `InvokeComplete` carries the base64 of
/// the invocation's log, through its REPORT line.
#[tokio::test]
async fn a_tail_log_type_puts_the_invocation_log_in_invoke_complete() {
    let emu = emulator("stream").start().await.unwrap();
    let mut request = invoke_stream_request(
        emu.addr(),
        "stream",
        json!({"chunks": 2, "chunk_bytes": 1}).to_string(),
    );
    request
        .headers_mut()
        .insert("x-amz-log-type", http::HeaderValue::from_static("Tail"));
    let events = send_streaming(emu.addr(), request).await.unwrap();
    let (payload, complete) = read_all(events).await;
    assert_eq!(payload, b"ab");
    let log = decode_log(complete["LogResult"].as_str().expect("a LogResult"));
    assert!(log.starts_with("START RequestId: "), "{log}");
    assert!(log.contains("\nEND RequestId: "), "{log}");
    assert!(
        log.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("REPORT RequestId: "),
        "{log}"
    );
    emu.shutdown().await;
}

fn decode_log(b64: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("LogResult is base64");
    String::from_utf8(bytes).expect("the log is text")
}
