//! A Runtime API whose every answer the test writes, byte for byte: for checking what a
//! function built on ironlambda-runtime does when the server misbehaves in one exact way
//! (edge-cases.md §A), which no well-behaved emulator can be made to do.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{PATIENCE, binary};

/// One request as the scripted server read it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which connection it came on: 0 for the first the server accepted, then 1, …
    pub conn: usize,
    /// The request line, e.g. `GET /2018-06-01/runtime/invocation/next HTTP/1.1`.
    pub line: String,
    /// The header lines, as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked when it came chunked.
    pub body: Vec<u8>,
    /// Trailer lines of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Request {
    /// Whether this is a `/next` poll.
    pub fn is_next(&self) -> bool {
        self.line
            .starts_with("GET /2018-06-01/runtime/invocation/next")
    }

    /// The request target (path and query).
    pub fn path(&self) -> &str {
        self.line.split_whitespace().nth(1).unwrap_or_default()
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// The first value of trailer `name` (any case).
    pub fn trailer(&self, name: &str) -> Option<&str> {
        find(&self.trailers, name)
    }
}

fn find<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What the scripted server does with one request.
pub enum Act {
    /// Write these bytes (one reply, several, or a broken one).
    Reply(Vec<u8>),
    /// Write these bytes, then close the connection (after a `Connection: close` reply).
    ReplyAndClose(Vec<u8>),
    /// Close the connection without answering.
    Close,
    /// Answer nothing (a long-poll with no event) and stop reading this connection.
    Hold,
}

/// A Runtime API on loopback that reads each connection's requests one at a time, in
/// order, as Go's server does, and lets `script` decide each answer. Every connection is
/// served at once on a thread of its own (a function with `AWS_LAMBDA_MAX_CONCURRENCY`
/// polls on several). Runs until the test ends.
pub fn scripted_api(script: impl FnMut(&Request) -> Act + Send + 'static) -> u16 {
    scripted_api_on("127.0.0.1:0", script).port()
}

/// [`scripted_api`] on `addr` (`[::1]:0`, say).
pub fn scripted_api_on(
    addr: &str,
    script: impl FnMut(&Request) -> Act + Send + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind(addr).expect("loopback is available");
    let local = listener
        .local_addr()
        .expect("a bound listener has an address");
    let script = Arc::new(Mutex::new(script));
    std::thread::spawn(move || {
        for (conn, sock) in listener.incoming().enumerate() {
            let Ok(sock) = sock else { return };
            let script = script.clone();
            std::thread::spawn(move || {
                serve_connection(sock, conn, |req| {
                    let mut script = script.lock().unwrap_or_else(|p| p.into_inner());
                    script(req)
                })
            });
        }
    });
    local
}

fn serve_connection(sock: TcpStream, conn: usize, mut script: impl FnMut(&Request) -> Act) {
    let Ok(mut writer) = sock.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(sock);
    while let Some(request) = read_request(&mut reader, conn) {
        match script(&request) {
            Act::Reply(bytes) => {
                if writer.write_all(&bytes).is_err() {
                    return;
                }
            }
            Act::ReplyAndClose(bytes) => {
                let _ = writer.write_all(&bytes);
                return;
            }
            Act::Close => return,
            Act::Hold => {
                // Keep the connection open, as a long-poll with no event does.
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}

fn read_line(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}

fn read_fields(reader: &mut BufReader<TcpStream>) -> Option<Vec<(String, String)>> {
    let mut fields = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Some(fields);
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>, conn: usize) -> Option<Request> {
    let line = read_line(reader)?;
    let headers = read_fields(reader)?;
    let mut body = Vec::new();
    let mut trailers = Vec::new();
    if find(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = read_line(reader)?;
            let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                trailers = read_fields(reader)?;
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).ok()?;
            read_line(reader)?;
        }
    } else if let Some(len) = find(&headers, "content-length").and_then(|v| v.parse().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some(Request {
        conn,
        line,
        headers,
        body,
        trailers,
    })
}

/// An HTTP/1.1 reply with `status` (e.g. `200 OK`), extra header lines and a body.
pub fn reply(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// A `/next` answer for request `id` carrying `body`, with a far deadline.
pub fn event_with(id: &str, body: &str) -> Vec<u8> {
    reply(
        "200 OK",
        &[
            ("Lambda-Runtime-Aws-Request-Id", id),
            ("Lambda-Runtime-Deadline-Ms", "99999999999999"),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:000000000000:function:scripted",
            ),
        ],
        body,
    )
}

/// A `/next` answer carrying `test-function`'s echo event for `id` (it answers
/// `{"echo":"<id>"}`).
pub fn event(id: &str) -> Vec<u8> {
    event_with(id, &format!(r#"{{"action":"echo","value":"{id}"}}"#))
}

/// The Runtime API's `202 {"status":"OK"}`.
pub const ACCEPTED: &[u8] =
    b"HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{\"status\":\"OK\"}";

/// Starts function binary `name` with only `AWS_LAMBDA_RUNTIME_API=<api>` and `env` set.
pub fn start_function(name: &str, api: &str, env: &[(&str, &str)]) -> Child {
    Command::new(binary(name))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the function starts")
}

/// Runs `test-function` against the scripted API on `port` until `done` says so (or
/// [`PATIENCE`] passes), then ends it. Whether `done` came.
pub fn run_until(port: u16, done: Receiver<()>) -> bool {
    run_until_value(port, done).is_some()
}

/// Like [`run_until`], for a `done` that carries what the server saw.
pub fn run_until_value<T>(port: u16, done: Receiver<T>) -> Option<T> {
    let mut function = start_function("test-function", &format!("127.0.0.1:{port}"), &[]);
    let got = done.recv_timeout(PATIENCE).ok();
    let _ = function.kill();
    let _ = function.wait();
    got
}

/// Waits for `function` to exit by itself, for at most [`PATIENCE`] (then kills it and
/// fails the test), and returns how it ended and what it wrote to stderr.
pub fn wait_for_exit(mut function: Child) -> Output {
    // Read stderr as it comes, so a chatty function never blocks on a full pipe.
    let mut stderr = function.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = function.try_wait().expect("the function can be waited for") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = function.kill();
            let _ = function.wait();
            panic!("the function did not exit by itself");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: Vec::new(),
        stderr: reader.join().unwrap_or_default(),
    }
}
