//! The AWS SDK for Python reads the emulator's InvokeWithResponseStream replies: boto3's
//! own event-stream parser checks every prelude and CRC, so this is the SDKs' view of the
//! framing. Skipped, with a note, when python3 or boto3 is missing (`.ci/run` installs it).

use std::path::Path;
use std::process::Command;

use ironlambda_integration_tests::emulator;
use serde_json::{Value, json};

fn boto3_available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import boto3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "note: boto3 is not installed, so the boto3 test is skipped (pip install boto3 runs it)"
        );
    }
    found
}

/// What boto3 read from InvokeWithResponseStream for `payload`.
async fn read_with_boto3(endpoint: String, payload: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("boto3_stream.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .args([&endpoint, "stream", &payload.to_string()])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The payload chunks boto3 read, joined.
fn joined(read: &Value) -> String {
    read["chunks"]
        .as_array()
        .map(|chunks| chunks.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn boto3_reads_a_streamed_response_and_a_mid_stream_error() {
    if !boto3_available() {
        return;
    }
    let emu = emulator("stream").start().await.unwrap();
    let endpoint = format!("http://{}", emu.addr());

    let read = read_with_boto3(endpoint.clone(), json!({"chunks": 5, "chunk_bytes": 3})).await;
    assert_eq!(read["status"], 200);
    assert_eq!(read["version"], "$LATEST");
    assert_eq!(joined(&read), "aaabbbcccdddeee");
    assert_eq!(read["complete"], json!({}));

    let read = read_with_boto3(
        endpoint,
        json!({"chunks": 5, "chunk_bytes": 3, "fail_after": 2}),
    )
    .await;
    assert_eq!(joined(&read), "aaabbb");
    assert_eq!(
        read["complete"],
        json!({"ErrorCode": "StreamInterrupted", "ErrorDetails": "stopped after 2 chunks"})
    );
    emu.shutdown().await;
}
