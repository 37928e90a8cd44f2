//! The `ironlambda-emulator` command: starts, serves, and on SIGTERM stops the function
//! and exits 0.

use ironlambda_emulator::{invoke_request, send};
use ironlambda_integration_tests::{PATIENCE, binary, start_cli};
use tokio::process::Command;

#[tokio::test]
async fn sigterm_stops_the_function_and_the_emulator() {
    let function = binary("test-function");
    let (mut child, addr) = start_cli(&[
        "--function".as_ref(),
        function.as_os_str(),
        "--memory".as_ref(),
        "256".as_ref(),
    ])
    .await;

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
