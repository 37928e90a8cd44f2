//! How a function built on ironlambda-runtime behaves when its environment is broken:
//! clear errors and a non-zero exit, never a hang or a spin.

use std::process::{Command, Output};

use ironlambda_integration_tests::{binary, emulator};

fn run_function(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary("test-function"));
    cmd.env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn an_unreachable_runtime_api_is_retried_then_the_process_exits_non_zero() {
    // Bind and release a port so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run_function(&[("AWS_LAMBDA_RUNTIME_API", &format!("127.0.0.1:{port}"))]);
    assert!(!out.status.success());
    let text = all_output(&out);
    assert!(text.contains("attempt 1 of 6"), "{text}");
    assert!(
        text.contains("cannot get the next event, stopping the runtime"),
        "{text}"
    );
}

#[test]
fn a_malformed_runtime_api_address_is_a_clear_startup_error() {
    for value in ["", "https://127.0.0.1:9001", "127.0.0.1:notaport"] {
        let out = run_function(&[("AWS_LAMBDA_RUNTIME_API", value)]);
        assert!(!out.status.success(), "{value:?}");
        let text = all_output(&out);
        assert!(
            text.contains("invalid AWS_LAMBDA_RUNTIME_API value"),
            "{value:?}: {text}"
        );
        assert!(!text.contains("panicked"), "{text}");
    }
    let out = run_function(&[]);
    assert!(all_output(&out).contains("the variable is not set"));
}

#[tokio::test]
async fn bad_configuration_is_reported_as_an_init_error() {
    let emu = emulator("test-function")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots")
        .start()
        .await
        .unwrap();
    let r = emu.invoke("{}").await.unwrap();
    assert_eq!(r.function_error(), Some("Unhandled"));
    let body = r.json().unwrap();
    assert_eq!(body["errorType"], "Runtime.InvalidConfig");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        "{body}"
    );
    emu.shutdown().await;
}
