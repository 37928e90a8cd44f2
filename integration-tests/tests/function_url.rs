//! The emulator's Function URL front door (`--url-port`) with HTTP functions as real
//! processes: raw HTTP/1.1 requests written on a socket as curl writes them (and curl
//! itself when installed), the axum example, streamed bodies read as they arrive.

use std::net::SocketAddr;

use ironlambda_emulator::Emulator;
use ironlambda_integration_tests::{PATIENCE, emulator};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An emulator serving `functions` (the first as the main one) with a front door.
async fn front_door(functions: &[&str]) -> (Emulator, SocketAddr) {
    let mut builder = emulator(functions[0]).url_port(0);
    for name in &functions[1..] {
        builder = builder.function(*name, ironlambda_integration_tests::binary(name));
    }
    let emu = builder.start().await.expect("the emulator starts");
    let url = emu.function_url().expect("a front door was asked for");
    let addr = url.trim_start_matches("http://").parse().unwrap();
    (emu, addr)
}

/// A response as read off the socket: status, headers (lower-case names, in order) and
/// the body, de-chunked.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Writes `request` (a whole HTTP/1.1 request, `Connection: close`) and reads the
/// response to the end.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(PATIENCE, socket.read_to_end(&mut bytes))
        .await
        .expect("the response ends")
        .unwrap();
    parse(&bytes)
}

fn parse(bytes: &[u8]) -> Raw {
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = std::str::from_utf8(&bytes[..head_end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let rest = &bytes[head_end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v == "chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Raw {
        status,
        headers,
        body,
    }
}

/// A chunked body's data.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
        rest = &rest[line_end + 2 + size + 2..];
    }
}

#[tokio::test]
async fn a_get_reaches_the_axum_router_and_its_text_comes_back() {
    let (emu, addr) = front_door(&["http-axum"]).await;
    let r = exchange(
        addr,
        b"GET /hello/Ada HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.body, b"Hello, Ada!");
    assert!(r.header("x-amzn-requestid").is_some());
    emu.shutdown().await;
}

#[tokio::test]
async fn a_binary_post_is_echoed_byte_for_byte_with_its_content_type() {
    let (emu, addr) = front_door(&["http-axum"]).await;
    let payload: Vec<u8> = (0..=255u8).collect();
    let mut request = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )
    .into_bytes();
    request.extend_from_slice(&payload);
    let r = exchange(addr, &request).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, payload);
    emu.shutdown().await;
}

#[tokio::test]
async fn headers_and_cookies_reach_the_function_as_a_function_url_sends_them() {
    let (emu, addr) = front_door(&["http-axum"]).await;
    let r = exchange(
        addr,
        b"GET /headers HTTP/1.1\r\nHost: localhost\r\nX-Tag: a\r\nX-Tag: b\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    let seen: Value = serde_json::from_slice(&r.body).unwrap();
    // A Function URL joins a repeated header with commas, and sends cookies apart; the
    // adapter makes them one `cookie` header again.
    assert_eq!(seen["x-tag"], "a,b");
    assert_eq!(seen["cookie"], "a=1; b=2");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_streamed_body_arrives_line_by_line_while_the_function_still_writes() {
    let (emu, addr) = front_door(&["http-axum"]).await;
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET /stream HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the first line is in; the last is written 400 ms of sleeps later.
    while !String::from_utf8_lossy(&bytes).contains("line 1 of 5") {
        let n = tokio::time::timeout(PATIENCE, socket.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the response ended before its first line");
        bytes.extend_from_slice(&buf[..n]);
    }
    assert!(
        !String::from_utf8_lossy(&bytes).contains("line 5 of 5"),
        "the first line came with the last: the body was not streamed"
    );
    socket.read_to_end(&mut bytes).await.unwrap();
    let r = parse(&bytes);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let text = String::from_utf8(r.body).unwrap();
    assert_eq!(text.lines().count(), 5, "{text}");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_buffered_function_answers_with_its_status_headers_and_json() {
    let (emu, addr) = front_door(&["http-fn"]).await;
    let r = exchange(
        addr,
        b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8\r\nConnection: close\r\n\r\nname=Ada",
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, br#"{"greeting":"Hello, Ada!"}"#);
    let r = exchange(
        addr,
        b"GET /?name=Grace%20Hopper HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"Hello, Grace Hopper!"[..])
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_streaming_prelude_sets_status_headers_and_each_cookie() {
    let (emu, addr) = front_door(&["function-url"]).await;
    let r = exchange(
        addr,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.all("set-cookie"), ["visited=yes; Path=/; HttpOnly"]);
    assert!(r.header("x-request-id").is_some());
    assert!(String::from_utf8_lossy(&r.body).starts_with("line 1 of 3\n"));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_function_error_is_a_502_and_the_log_says_why() {
    // test-function takes `{"action": …}` events, so an HTTP event fails it.
    let (emu, addr) = front_door(&["test-function"]).await;
    let r = exchange(
        addr,
        b"GET /anything HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 502);
    assert_eq!(r.body, b"Internal Server Error");
    let line = ironlambda_integration_tests::line(emu.logs(), "URL GET /anything: 502").await;
    assert!(line.contains("Runtime.InvalidEvent"), "{line}");
    emu.shutdown().await;
}

#[tokio::test]
async fn with_several_functions_the_first_path_segment_picks_one() {
    let (emu, addr) = front_door(&["http-fn", "http-axum"]).await;
    let r = exchange(
        addr,
        b"GET /http-axum/hello/Ada HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"Hello, Ada!"[..]));
    let r = exchange(
        addr,
        b"GET /http-fn/?name=Bo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"Hello, Bo!"[..]));
    let r = exchange(
        addr,
        b"GET /nobody/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("http-fn, http-axum"));
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_gets_the_axum_answer_through_the_front_door() {
    let Ok(probe) = std::process::Command::new("curl").arg("--version").output() else {
        println!("note: curl is not installed; skipping the curl client test");
        return;
    };
    assert!(probe.status.success());
    let (emu, _) = front_door(&["http-axum"]).await;
    let url = format!("{}/hello/curl", emu.function_url().unwrap());
    let out = tokio::time::timeout(
        PATIENCE,
        tokio::process::Command::new("curl")
            .args(["-sS", "-i", "--max-time", "60", &url])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("Hello, curl!"), "{text}");
    emu.shutdown().await;
}
