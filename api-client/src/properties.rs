//! Property tests for every reader of bytes that come from outside: reply heads and
//! chunked bodies, `/next` headers, routes, request ids, endpoints, extension events and
//! telemetry subscriptions. Whatever the input, no reader panics; where a type is both
//! written and read, what is written reads back the same.

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;

use crate::http1::{self, Framing};
use crate::runtime_api::{NextHeaders, RuntimeRoute};
use crate::telemetry::{SubscriptionApi, TelemetrySubscription};
use crate::{Endpoint, ExtensionEvent, ExtensionRoute, RuntimeApi, validate_request_id};

/// Bytes shaped like an HTTP reply often enough to reach the deeper branches.
fn reply_like() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"HTTP/1.1 200 OK".to_vec()),
        Just(b"HTTP/1.0 204 No Content".to_vec()),
        Just(b"HTTP/1.1 100 Continue".to_vec()),
        Just(b"content-length: 5".to_vec()),
        Just(b"Content-Length: 99999999999999999999".to_vec()),
        Just(b"transfer-encoding: gzip, chunked".to_vec()),
        Just(b"connection: close".to_vec()),
        Just(b"Lambda-Runtime-Aws-Request-Id: abc".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    proptest::collection::vec(line, 0..8).prop_map(|lines| {
        let mut out = Vec::new();
        for l in lines {
            out.extend_from_slice(&l);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\nbody");
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reply_heads_never_panic(bytes in prop_oneof![reply_like(), proptest::collection::vec(any::<u8>(), 0..300)]) {
        let mut buf = BytesMut::from(&bytes[..]);
        if let Ok(Some(head)) = http1::take_head(&mut buf) {
            // What was taken is the front of the input, and the rest stays.
            prop_assert_eq!(head.raw.bytes.len() + buf.len(), bytes.len());
            prop_assert!(bytes.starts_with(&head.raw.bytes));
            // The fields as indexed from httparse's parse are the ones a scan finds.
            let indexed: Vec<_> = head.raw.fields().collect();
            let scanned: Vec<_> = http1::scan_fields(&head.raw.bytes).collect();
            prop_assert_eq!(indexed, scanned);
            if let Framing::Length(n) = head.framing {
                prop_assert!(n <= http1::MAX_BODY);
            }
        }
    }

    #[test]
    fn chunked_bodies_read_back_whatever_the_chunks_and_reads(
        body in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(1usize..300, 1..20),
        read_size in 1usize..64,
    ) {
        // Written in chunks of the sizes `cuts` gives, then fed `read_size` bytes at a time.
        let mut wire = Vec::new();
        let mut rest = &body[..];
        let mut sizes = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap_or(&1)).min(rest.len());
            wire.extend_from_slice(&http1::chunk_size_line(n));
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        let mut tail = BytesMut::new();
        http1::last_chunk(&[], &mut tail);
        wire.extend_from_slice(&tail);
        let mut buf = BytesMut::new();
        let mut out = BytesMut::new();
        let mut done = false;
        for piece in wire.chunks(read_size) {
            prop_assert!(!done, "the body ended before its last chunk");
            buf.put_slice(piece);
            done = http1::take_chunks(&mut buf, &mut out).unwrap();
        }
        prop_assert!(done);
        prop_assert_eq!(&out[..], &body[..]);
    }

    #[test]
    fn chunked_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut buf = BytesMut::from(&bytes[..]);
        let mut out = BytesMut::new();
        let _ = http1::take_chunks(&mut buf, &mut out);
    }

    #[test]
    fn next_headers_never_panic(fields in proptest::collection::vec(
        (prop_oneof![
            Just(b"lambda-runtime-aws-request-id".to_vec()),
            Just(b"Lambda-Runtime-Deadline-Ms".to_vec()),
            Just(b"lambda-runtime-client-context".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..20),
        ], proptest::collection::vec(any::<u8>(), 0..40)),
        0..10,
    )) {
        let h = NextHeaders::from_fields(fields.iter().map(|(n, v)| (&n[..], &v[..])));
        // A value is kept only as trimmed text.
        prop_assert_eq!(h.request_id.trim(), h.request_id.as_str());
    }

    #[test]
    fn routes_never_panic_and_response_paths_read_back(path in ".{0,80}", id in "[A-Za-z0-9_.:-]{1,60}") {
        let _ = RuntimeRoute::parse(&path);
        let _ = ExtensionRoute::parse(&path);
        prop_assume!(validate_request_id(&id).is_ok());
        let api = RuntimeApi::new(Endpoint::parse("127.0.0.1:9001").unwrap());
        let req = api.response(&id, bytes::Bytes::new(), "application/json").unwrap();
        prop_assert_eq!(RuntimeRoute::parse(req.uri().path()), Some(RuntimeRoute::Response(&id)));
        let req = api.error(&id, "T", bytes::Bytes::new()).unwrap();
        prop_assert_eq!(RuntimeRoute::parse(req.uri().path()), Some(RuntimeRoute::Error(&id)));
    }

    #[test]
    fn accepted_request_ids_cannot_leave_their_path_segment(id in ".{0,100}") {
        if validate_request_id(&id).is_ok() {
            prop_assert!(!id.is_empty());
            prop_assert!(!id.contains(['/', '%', '?', '#', '\\', ' ']));
            prop_assert!(!id.contains(".."));
            prop_assert!(id.chars().all(|c| c.is_ascii_graphic()));
        }
    }

    #[test]
    fn endpoints_never_panic(value in ".{0,80}") {
        if let Ok(e) = Endpoint::parse(&value) {
            // Whatever was accepted builds a request without panicking.
            let _ = RuntimeApi::new(e).next();
        }
    }

    #[test]
    fn extension_events_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = serde_json::from_slice::<ExtensionEvent>(&bytes);
        let _ = serde_json::from_slice::<TelemetrySubscription>(&bytes);
    }

    #[test]
    fn extension_events_read_back(
        request_id in "[a-z0-9-]{1,40}",
        deadline_ms in any::<u64>(),
        trace in proptest::option::of("[A-Za-z0-9=;-]{1,60}"),
        reason in "[a-zA-Z ]{0,20}",
    ) {
        let invoke = ExtensionEvent::Invoke(crate::InvokeEvent {
            deadline_ms,
            request_id,
            invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
            tracing: trace.map(|value| crate::Tracing { kind: "X-Amzn-Trace-Id".into(), value }),
        });
        let json = serde_json::to_vec(&invoke).unwrap();
        prop_assert_eq!(serde_json::from_slice::<ExtensionEvent>(&json).unwrap(), invoke);
        let shutdown = ExtensionEvent::Shutdown(crate::ShutdownEvent {
            shutdown_reason: crate::ShutdownReason::parse(&reason),
            deadline_ms,
        });
        let json = serde_json::to_vec(&shutdown).unwrap();
        prop_assert_eq!(serde_json::from_slice::<ExtensionEvent>(&json).unwrap(), shutdown);
    }

    #[test]
    fn subscriptions_validate_without_panicking(
        max_items in proptest::option::of(any::<u32>()),
        max_bytes in proptest::option::of(any::<u32>()),
        timeout_ms in proptest::option::of(any::<u32>()),
        port in any::<u16>(),
        uri in ".{0,60}",
    ) {
        let json = serde_json::json!({
            "schemaVersion": "2022-12-13",
            "types": ["platform"],
            "buffering": {"maxItems": max_items, "maxBytes": max_bytes, "timeoutMs": timeout_ms},
            "destination": {"protocol": "HTTP", "URI": uri},
        });
        if let Ok(sub) = serde_json::from_value::<TelemetrySubscription>(json) {
            let _ = sub.validate(SubscriptionApi::Telemetry);
            let _ = sub.validate(SubscriptionApi::Logs);
            let _ = sub.buffering.resolved();
        }
        let tcp = serde_json::json!({
            "schemaVersion": "2022-12-13",
            "types": ["function"],
            "destination": {"protocol": "TCP", "port": port},
        });
        if let Ok(sub) = serde_json::from_value::<TelemetrySubscription>(tcp) {
            let _ = sub.validate(SubscriptionApi::Telemetry);
        }
    }
}

/// One reply as the test server writes it: a status, a body, and the framing.
fn reply_bytes(status: u16, body: &[u8], chunked: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\n").into_bytes();
    if status == 204 {
        // No body, and so no framing (RFC 9110 §15.3.5).
        out.extend_from_slice(b"\r\n");
    } else if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
        for piece in body.chunks(7) {
            out.extend_from_slice(&http1::chunk_size_line(piece.len()));
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Pipelined requests get their replies in order and whole, whatever the replies'
    /// framing and however the bytes are cut by the network.
    #[test]
    fn pipelined_replies_come_back_in_order(
        replies in proptest::collection::vec(
            (prop_oneof![Just(200u16), Just(202), Just(204), Just(400), Just(500)],
             proptest::collection::vec(any::<u8>(), 0..60),
             any::<bool>()),
            1..6),
        cut in 1usize..50,
    ) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let wire: Vec<u8> = replies
            .iter()
            .flat_map(|(status, body, chunked)| {
                // 204 carries no body.
                let body: &[u8] = if *status == 204 { &[] } else { body };
                reply_bytes(*status, body, *chunked)
            })
            .collect();
        let count = replies.len();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            // Wait for every request head, then answer in small pieces.
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while seen.windows(4).filter(|w| w == b"\r\n\r\n").count() < count {
                let n = sock.read(&mut buf).unwrap();
                if n == 0 { return; }
                seen.extend_from_slice(&buf[..n]);
            }
            for piece in wire.chunks(cut) {
                sock.write_all(piece).unwrap();
                sock.flush().unwrap();
            }
            let _ = sock.read(&mut buf);
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = runtime.block_on(async {
            let endpoint = Endpoint::parse(&addr.to_string()).unwrap();
            let api = RuntimeApi::new(endpoint.clone());
            let mut client = crate::Client::new(&endpoint);
            let next = crate::EncodedRequest::new(&api.next());
            for _ in 0..count {
                client.queue_encoded(&next);
            }
            let mut got = Vec::new();
            for _ in 0..count {
                got.push(match client.receive().await {
                    Ok(r) => (r.status.as_u16(), r.body.to_vec()),
                    Err(e) => (e.status().map_or(0, |s| s.as_u16()), Vec::new()),
                });
            }
            got
        });
        drop(runtime);
        let _ = server.join();
        for ((status, body, _), (got_status, got_body)) in replies.iter().zip(&got) {
            prop_assert_eq!(status, got_status);
            if (200..300).contains(status) && *status != 204 {
                prop_assert_eq!(body, got_body);
            }
        }
    }
}
