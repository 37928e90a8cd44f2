//! `make run`: starts the bundled emulator CLI with the example functions, sends real
//! invocations over HTTP, prints each request and answer next to the emulator's own lines
//! (START / END / REPORT and the function's logs), then stops the emulator with SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ironlambda_emulator::{invoke_request, invoke_stream_request, send, send_streaming};
use ironlambda_integration_tests::binary;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, Notify};

const WAIT: Duration = Duration::from_secs(30);

/// The emulator's output lines seen so far, with a signal for new ones.
#[derive(Default)]
struct Seen {
    lines: Mutex<Vec<String>>,
    added: Notify,
}

impl Seen {
    async fn wait_for(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let wait = async {
            loop {
                let notified = self.added.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(l) = self.lines.lock().await.iter().find(|l| pred(l)) {
                    return l.clone();
                }
                notified.await;
            }
        };
        tokio::time::timeout(WAIT, wait).await.ok()
    }
}

struct Running {
    child: Child,
    addr: SocketAddr,
    seen: Arc<Seen>,
    /// Prints the emulator's output; ends at its EOF.
    reader: tokio::task::JoinHandle<()>,
}

async fn start_emulator(function: &Path, extensions: Option<&Path>) -> Result<Running, String> {
    start_emulator_with(function, extensions, &[]).await
}

async fn start_emulator_with(
    function: &Path,
    extensions: Option<&Path>,
    args: &[&str],
) -> Result<Running, String> {
    let mut cmd = Command::new(binary("ironlambda-emulator"));
    cmd.arg("--function")
        .arg(function)
        .args(["--port", "0"])
        .args(args);
    if let Some(dir) = extensions {
        cmd.arg("--extensions-dir").arg(dir);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the emulator: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let seen = Arc::new(Seen::default());
    let feed = seen.clone();
    let reader = tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("    │ {}", line.replace('\t', "  "));
            feed.lines.lock().await.push(line);
            feed.added.notify_waiters();
        }
    });
    let listening = seen
        .wait_for(|l| l.contains("listening on http://"))
        .await
        .ok_or("the emulator did not say where it listens")?;
    let addr = listening
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("cannot read the address in {listening:?}"))?;
    Ok(Running {
        child,
        addr,
        seen,
        reader,
    })
}

async fn invoke(run: &Running, function: &str, what: &str, payload: &str) -> Result<(), String> {
    println!("\n  ▶ {what}\n    → POST /2015-03-31/functions/{function}/invocations  {payload}");
    let r = send(
        run.addr,
        invoke_request(run.addr, function, payload.to_owned()),
    )
    .await
    .map_err(|e| format!("invoke failed: {e}"))?;
    let marker = r
        .function_error()
        .map(|e| format!(" (X-Amz-Function-Error: {e})"))
        .unwrap_or_default();
    println!("    ← {}{marker}  {}", r.status.as_u16(), r.text());
    if let Some(id) = r.request_id() {
        let needle = format!("REPORT RequestId: {id}");
        run.seen
            .wait_for(|l| l.starts_with(&needle))
            .await
            .ok_or_else(|| format!("no REPORT line for {id}"))?;
    }
    Ok(())
}

async fn stop(mut run: Running) -> Result<(), String> {
    let pid = run.child.id().ok_or("the emulator already exited")?;
    // SAFETY: plain FFI call; the pid is our own child's, which has not been reaped.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let status = tokio::time::timeout(WAIT, run.child.wait())
        .await
        .map_err(|_| "the emulator did not stop after SIGTERM".to_owned())?
        .map_err(|e| e.to_string())?;
    // Print everything the emulator said before it exited.
    let _ = tokio::time::timeout(WAIT, run.reader).await;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the emulator exited with {status}"))
    }
}

async fn tour() -> Result<(), String> {
    println!("ironlambda tour: real functions, real processes, real HTTP on 127.0.0.1\n");
    println!("■ examples/src/bin/hello.rs on ironlambda-emulator");
    let run = start_emulator(&binary("hello"), None).await?;
    invoke(&run, "hello", "a success", r#"{"name":"Ada"}"#).await?;
    invoke(&run, "hello", "no name: the world is greeted", "{}").await?;
    invoke(
        &run,
        "hello",
        "an event of the wrong shape fails that invocation only",
        r#"{"name":42}"#,
    )
    .await?;
    invoke(
        &run,
        "hello",
        "a body that is not JSON never reaches the function",
        "hello?",
    )
    .await?;
    stop(run).await?;

    println!("\n■ examples/src/bin/order.rs: typed errors");
    let run = start_emulator(&binary("order"), None).await?;
    invoke(
        &run,
        "order",
        "a good order",
        r#"{"item":"tea","quantity":"2"}"#,
    )
    .await?;
    invoke(
        &run,
        "order",
        "a std error through `?`",
        r#"{"item":"tea","quantity":"two"}"#,
    )
    .await?;
    invoke(
        &run,
        "order",
        "our own error type",
        r#"{"item":"coffee","quantity":"1"}"#,
    )
    .await?;
    invoke(
        &run,
        "order",
        "an overridden errorType",
        r#"{"item":"tea","quantity":"99"}"#,
    )
    .await?;
    stop(run).await?;

    println!("\n■ examples/src/bin/stream.rs: a streamed response (InvokeWithResponseStream)");
    let run = start_emulator(&binary("stream"), None).await?;
    invoke_streaming(
        &run,
        "stream",
        "four chunks, 150 ms apart, each printed as it arrives",
        r#"{"chunks":4,"chunk_bytes":8,"interval_ms":150}"#,
    )
    .await?;
    invoke_streaming(
        &run,
        "stream",
        "a failure after two chunks: the bytes already sent, then the error",
        r#"{"chunks":4,"chunk_bytes":8,"fail_after":2}"#,
    )
    .await?;
    stop(run).await?;

    println!(
        "\n■ examples/src/bin/shared-client.rs: one client, four invocations at once (--max-concurrency 4)"
    );
    let run =
        start_emulator_with(&binary("shared-client"), None, &["--max-concurrency", "4"]).await?;
    invoke_together(
        &run,
        "shared-client",
        "four invokes sent together run together (peak 4) in one process",
        r#"{"wait_ms":200}"#,
        4,
    )
    .await?;
    stop(run).await?;

    println!(
        "\n■ examples/src/bin/http-axum.rs: an axum Router behind a Function URL (--url-port 0)"
    );
    let run = start_emulator_with(&binary("http-axum"), None, &["--url-port", "0"]).await?;
    let url = run
        .seen
        .wait_for(|l| l.contains("Function URL on http://"))
        .await
        .and_then(|l| {
            l.split("http://").nth(1).and_then(|rest| {
                rest.split([':', ' '])
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(":")
                    .parse()
                    .ok()
            })
        })
        .ok_or("the emulator did not say where its Function URL is")?;
    url_request(&run, url, "GET", "/hello/Ada", None).await?;
    url_request(
        &run,
        url,
        "POST",
        "/echo",
        Some(("application/xml", "<order>tea</order>")),
    )
    .await?;
    url_request(&run, url, "GET", "/stream", None).await?;
    stop(run).await?;

    println!(
        "\n■ examples/src/bin/graceful.rs with the telemetry-summary extension (a layer's /opt/extensions)"
    );
    let dir = std::env::temp_dir().join(format!("ironlambda-tour-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink(binary("telemetry-summary"), dir.join("telemetry-summary"))
        .map_err(|e| e.to_string())?;
    let run = start_emulator(&binary("graceful"), Some(&dir)).await?;
    invoke(
        &run,
        "graceful",
        "the extension sees INVOKE; the function buffers",
        r#"{"item":"tea"}"#,
    )
    .await?;
    invoke(
        &run,
        "graceful",
        "telemetry summaries arrive through the Telemetry API",
        r#"{"item":"scone"}"#,
    )
    .await?;
    run.seen
        .wait_for(|l| l.starts_with("[telemetry-summary] summary"))
        .await
        .ok_or("no telemetry summary arrived")?;
    println!(
        "\n  ▶ SIGTERM to the emulator: SIGTERM to the function (its hook flushes), SHUTDOWN to the extension"
    );
    stop(run).await?;
    let _ = std::fs::remove_dir_all(&dir);
    println!("\nDone: every emulator stopped on SIGTERM; no process left behind.");
    Ok(())
}

/// Sends one plain HTTP request to the Function URL front door at `url`, as curl would,
/// and prints the answer's status, content type and body as each piece arrives.
async fn url_request(
    run: &Running,
    url: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {url}\r\nConnection: close\r\n");
    if let Some((content_type, text)) = body {
        request.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            text.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.map_or("", |(_, text)| text));
    println!(
        "\n  ▶ {method} http://{url}{path}{}",
        body.map(|(_, t)| format!("  {t}")).unwrap_or_default()
    );
    let mut socket = tokio::net::TcpStream::connect(url)
        .await
        .map_err(|e| format!("cannot reach the Function URL: {e}"))?;
    socket
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    let mut head_done = false;
    let mut request_id = String::new();
    loop {
        let n = tokio::time::timeout(WAIT, socket.read(&mut buf))
            .await
            .map_err(|_| "the Function URL did not answer".to_owned())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if !head_done {
            let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&seen[..end]).into_owned();
            let status = head.lines().next().unwrap_or("").to_owned();
            let content_type = head
                .lines()
                .find_map(|l| l.strip_prefix("content-type: "))
                .unwrap_or("-")
                .to_owned();
            let id_header = format!("{}: ", ironlambda_api_client::headers::AMZN_REQUEST_ID);
            request_id = head
                .lines()
                .find_map(|l| l.strip_prefix(id_header.as_str()))
                .unwrap_or("")
                .to_owned();
            println!("    ← {status}  content-type: {content_type}");
            seen.drain(..end + 4);
            head_done = true;
        }
        // Each line of body text, as it arrives (chunk sizes left out).
        let text = String::from_utf8_lossy(&seen).into_owned();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && u64::from_str_radix(l, 16).is_err())
        {
            println!("    ← +{:>3} ms  {line}", started.elapsed().as_millis());
        }
        seen.clear();
    }
    let report = format!("REPORT RequestId: {request_id}");
    run.seen
        .wait_for(|l| l.starts_with(&report))
        .await
        .ok_or_else(|| format!("no REPORT line for {request_id}"))?;
    Ok(())
}

/// Sends `count` invokes of `payload` at once and prints each answer.
async fn invoke_together(
    run: &Running,
    function: &str,
    what: &str,
    payload: &str,
    count: usize,
) -> Result<(), String> {
    println!(
        "\n  ▶ {what}\n    → {count} × POST /2015-03-31/functions/{function}/invocations  {payload}"
    );
    let calls: Vec<_> = (0..count)
        .map(|_| {
            let request = invoke_request(run.addr, function, payload.to_owned());
            tokio::spawn(send(run.addr, request))
        })
        .collect();
    for call in calls {
        let r = call
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("invoke failed: {e}"))?;
        println!("    ← {}  {}", r.status.as_u16(), r.text());
    }
    Ok(())
}

/// Invokes through InvokeWithResponseStream and prints each event as it arrives.
async fn invoke_streaming(
    run: &Running,
    function: &str,
    what: &str,
    payload: &str,
) -> Result<(), String> {
    println!(
        "\n  ▶ {what}\n    → POST /2021-11-15/functions/{function}/response-streaming-invocations  {payload}"
    );
    let request = invoke_stream_request(run.addr, function, payload.to_owned());
    let mut events = send_streaming(run.addr, request)
        .await
        .map_err(|e| format!("invoke failed: {e}"))?;
    while let Some(event) = events
        .next_event()
        .await
        .map_err(|e| format!("reading the stream failed: {e}"))?
    {
        let kind = event.header(":event-type").unwrap_or("?");
        println!("    ← {kind} {}", String::from_utf8_lossy(&event.payload));
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match tour().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tour failed: {e}");
            ExitCode::FAILURE
        }
    }
}
