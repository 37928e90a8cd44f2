//! The `ironlambda-emulator` command: starts, serves, and on SIGTERM stops the function
//! and exits 0.

use ironlambda_emulator::{invoke_request, send};
use ironlambda_integration_tests::{PATIENCE, binary, start_cli};
use tokio::process::Command;

#[tokio::test]
async fn sigterm_stops_the_function_and_the_emulator() {
    let function = binary("test-function");
    let cli = start_cli(&[
        "--function".as_ref(),
        function.as_os_str(),
        "--memory".as_ref(),
        "256".as_ref(),
    ])
    .await;
    let (mut child, addr) = (cli.child, cli.addr);

    let r = send(
        addr,
        invoke_request(addr, "test-function", r#"{"action":"context"}"#),
    )
    .await
    .unwrap();
    let ctx = r.json().unwrap();
    assert_eq!(ctx["memory_mb"], 256);
    let function_pid = ctx["pid"].as_u64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{function_pid}")).exists());

    // SAFETY: plain FFI call on our own, not yet reaped, child.
    unsafe { libc::kill(child.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !std::path::Path::new(&format!("/proc/{function_pid}")).exists(),
        "the function process outlived the emulator"
    );
}

/// `--environments 2`: two invokes at once run in two function processes, with the
/// extension each environment launches; SIGTERM shuts both environments down (SHUTDOWN to
/// each extension) and the command exits 0 with no process left.
#[tokio::test]
async fn sigterm_shuts_down_every_environment() {
    let function = binary("test-function");
    let extensions = ironlambda_integration_tests::extensions_dir(&["test-extension"]);
    let cli = start_cli(&[
        "--function".as_ref(),
        function.as_os_str(),
        "--environments".as_ref(),
        "2".as_ref(),
        "--extensions-dir".as_ref(),
        extensions.path().as_os_str(),
    ])
    .await;
    let addr = cli.addr;
    let calls: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(send(
                addr,
                invoke_request(addr, "test-function", r#"{"action":"sleep","ms":400}"#),
            ))
        })
        .collect();
    let mut pids = Vec::new();
    for call in calls {
        let answer = call.await.unwrap().unwrap().json().unwrap();
        pids.push(answer["pid"].as_u64().unwrap());
    }
    assert_ne!(pids[0], pids[1], "both ran in one environment");
    let mut cli = cli;
    // SAFETY: plain FFI call on our own, not yet reaped, child.
    unsafe { libc::kill(cli.child.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    let status = tokio::time::timeout(PATIENCE, cli.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    for env in ["[env 1]", "[env 2]"] {
        let shutdown = format!("{env} [test-extension] SHUTDOWN spindown");
        assert!(
            cli.wait_for_line(|l| l.starts_with(&shutdown))
                .await
                .is_some(),
            "{:#?}",
            cli.lines()
        );
    }
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "function process {pid} outlived the emulator"
        );
    }
}

/// `--function NAME=PATH` is repeatable: one emulator serves each function under its name.
#[tokio::test]
async fn the_command_serves_several_functions_by_name() {
    let hello = binary("hello");
    let mut named = std::ffi::OsString::from("checker=");
    named.push(binary("test-function"));
    let cli = start_cli(&[
        "--function".as_ref(),
        hello.as_os_str(),
        "--function".as_ref(),
        named.as_os_str(),
    ])
    .await;
    assert!(
        cli.lines()[0].contains("(functions hello, checker,"),
        "{:?}",
        cli.lines()
    );
    let addr = cli.addr;
    let r = send(addr, invoke_request(addr, "hello", r#"{"name":"Ada"}"#))
        .await
        .unwrap();
    assert_eq!(r.json().unwrap()["message"], "Hello, Ada!");
    let r = send(
        addr,
        invoke_request(addr, "checker", r#"{"action":"echo","value":7}"#),
    )
    .await
    .unwrap();
    assert_eq!(r.json().unwrap()["echo"], 7);
}

#[tokio::test]
async fn bad_arguments_are_clear_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["--function", "/nonexistent/bootstrap"], "does not exist"),
        (
            &["--function", "x", "--timeout", "0"],
            "not a number of seconds",
        ),
        (
            &["--function", "x", "--env", "NOEQUALS"],
            "is not KEY=VALUE",
        ),
        (&[], "--function"),
    ];
    for (args, expected) in cases {
        let out = Command::new(binary("ironlambda-emulator"))
            .args(*args)
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// A function's output cannot drive the terminal: control characters are printed written
/// out, so no escape sequence, bell or carriage return reaches the screen raw.
#[tokio::test]
async fn control_characters_from_the_function_are_printed_escaped() {
    let function = binary("test-function");
    let cli = start_cli(&["--function".as_ref(), function.as_os_str()]).await;
    let payload = serde_json::json!({
        "action": "print",
        "text": "before\u{1b}[2J\u{7}\rREPORT RequestId: fake\u{1b}]0;title\u{7}after",
    });
    let r = send(
        cli.addr,
        invoke_request(cli.addr, "test-function", payload.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(r.function_error(), None, "{}", r.text());
    let line = cli
        .wait_for_line(|l| l.starts_with("before"))
        .await
        .expect("the printed line");
    assert_eq!(
        line,
        r"before\x1b[2J\x07\rREPORT RequestId: fake\x1b]0;title\x07after"
    );
    assert!(
        cli.lines()
            .iter()
            .all(|l| !l.contains('\u{1b}') && !l.contains('\r')),
        "a raw control character was printed"
    );
}

/// Ctrl-C in a terminal sends SIGINT to the emulator's whole process group. The function
/// and its extensions run in groups of their own, so they still get Lambda's shutdown:
/// the extension receives SHUTDOWN instead of dying first.
#[tokio::test]
async fn ctrl_c_shuts_the_environment_down_as_lambda_does() {
    let dir = ironlambda_integration_tests::extensions_dir(&["test-extension"]);
    let function = binary("hello");
    let mut cli = start_cli(&[
        "--function".as_ref(),
        function.as_os_str(),
        "--extensions-dir".as_ref(),
        dir.path().as_os_str(),
    ])
    .await;
    let r = send(cli.addr, invoke_request(cli.addr, "hello", "{}"))
        .await
        .unwrap();
    assert_eq!(r.function_error(), None, "{}", r.text());
    let pgid = cli.child.id().unwrap() as libc::pid_t;
    // SAFETY: plain FFI call: SIGINT to the process group of our own child (it leads it).
    unsafe { libc::kill(-pgid, libc::SIGINT) };
    let status = tokio::time::timeout(PATIENCE, cli.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        cli.wait_for_line(|l| l.contains("[test-extension] SHUTDOWN spindown"))
            .await
            .is_some(),
        "the extension never got SHUTDOWN: {:#?}",
        cli.lines()
    );
}

/// A port that is taken is a clear startup error naming the port and the way out.
#[tokio::test]
async fn a_port_in_use_says_which_and_how_to_pick_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(binary("ironlambda-emulator"))
        .args(["--function"])
        .arg(binary("hello"))
        .args(["--port", &port])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("--port 0"), "{stderr}");
}

/// A function file Lambda could not start is refused when the emulator starts, with the
/// reason, instead of failing the first invoke.
#[tokio::test]
async fn a_function_that_cannot_run_is_refused_at_startup() {
    use std::os::unix::fs::PermissionsExt;
    let dir = ironlambda_integration_tests::Scratch::new("unlaunchable");
    let not_executable = dir.path().join("bootstrap-a");
    std::fs::copy(binary("hello"), &not_executable).unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();
    let not_a_program = dir.path().join("bootstrap-b");
    std::fs::write(&not_a_program, "just text").unwrap();
    std::fs::set_permissions(&not_a_program, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (path, reason) in [
        (&not_executable, "is not executable"),
        (&not_a_program, "neither an ELF binary nor a script"),
    ] {
        let out = Command::new(binary("ironlambda-emulator"))
            .arg("--function")
            .arg(path)
            .args(["--port", "0"])
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{stderr}");
    }
}
