//! The runtime against a Runtime API served by Go's `net/http`, the HTTP server Lambda's
//! own Runtime API is built on (`integration-tests/go-runtime-api`). Our runtime writes each
//! answer and the next `/next` in one write; this checks, on the real server
//! implementation, that the answers arrive in order on one connection, that Go's chunked
//! events are read whole, and that after Go refuses an oversized response and closes the
//! connection, the runtime carries on with the next event on a new one.
//!
//! Needs the `go` command (`apt-get install golang-go`; `.ci/run` installs it). `make test`
//! sets `IRONLAMBDA_SKIP_GO=1`, and says so, on a machine without it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use ironlambda_integration_tests::{PATIENCE, Scratch, binary};

/// Builds the Go server into the test's scratch space, or says why it cannot.
fn build_go_server() -> Option<PathBuf> {
    if std::env::var_os("IRONLAMBDA_SKIP_GO").is_some() {
        eprintln!("skipped: IRONLAMBDA_SKIP_GO is set (Go is not installed)");
        return None;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("go-runtime-api");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-runtime-api");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(&source)
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run `go` ({e}): install it (apt-get install golang-go) or set IRONLAMBDA_SKIP_GO=1")
        });
    assert!(status.success(), "go build failed in {}", source.display());
    Some(out)
}

/// Kills and reaps a child this test started.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pipelined_answers_work_against_gos_net_http() {
    let Some(server_bin) = build_go_server() else {
        return;
    };
    let scratch = Scratch::new("go-runtime-api");
    let events = scratch.path().join("events");
    let long = "y".repeat(5000);
    std::fs::write(
        &events,
        [
            r#"{"action":"echo","value":1}"#.to_owned(),
            // Over 2 KB: Go sends it chunked.
            format!(r#"{{"action":"echo","value":"{long}"}}"#),
            // A 7 MB response: Go answers 413 and closes the connection.
            r#"{"action":"big","bytes":7000000}"#.to_owned(),
            r#"{"action":"fail","message":"no"}"#.to_owned(),
            r#"{"action":"echo","value":3}"#.to_owned(),
        ]
        .join("\n"),
    )
    .unwrap();

    let mut server = Reaped(
        Command::new(&server_bin)
            .arg(&events)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the Go server starts"),
    );
    let (lines_tx, lines) = mpsc::channel();
    let stdout = server.0.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(PATIENCE)
            .expect("the Go server reports within the patience limit")
    };
    let addr = next_line();

    let _function = Reaped(
        Command::new(binary("test-function"))
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", "go")
            .stdout(Stdio::null())
            .spawn()
            .expect("the function starts"),
    );

    let mut answers = Vec::new();
    loop {
        let line = next_line();
        if let Some(count) = line.strip_prefix("connections ") {
            // One connection until Go closes it after the 413, one after.
            assert_eq!(count, "2", "{answers:#?}");
            break;
        }
        answers.push(line);
    }
    let expected_starts = [
        r#"202 id-0 response {"echo":1}"#.to_owned(),
        format!(r#"202 id-1 response {{"echo":"{long}"}}"#),
        "413 id-2 response".to_owned(),
        r#"202 id-3 error {"errorMessage":"no","errorType":"Function.Requested""#.to_owned(),
        r#"202 id-4 response {"echo":3}"#.to_owned(),
    ];
    assert_eq!(answers.len(), expected_starts.len(), "{answers:#?}");
    for (answer, expected) in answers.iter().zip(&expected_starts) {
        assert!(
            answer.starts_with(expected.as_str()),
            "{answer:?} vs {expected:?}"
        );
    }
}
