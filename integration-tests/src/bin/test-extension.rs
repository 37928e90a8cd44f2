//! An external extension for the end-to-end tests. It prints what it receives:
//! `INVOKE <id> deadline=<ms> pid=<pid>`, `done <id>`, `SHUTDOWN <reason> deadline=<ms>`.
//! With `EXT_WAIT_FOR=<path>` each INVOKE hook waits until that file exists; with
//! `EXT_HANG=1` the INVOKE hook never returns; with `EXT_HANG_AT_SHUTDOWN=1` the SHUTDOWN
//! hook never returns; with `EXT_SUBSCRIBE=telemetry|logs` it
//! subscribes to platform events and function logs through that API and prints
//! `got <type> <request id> <status>` or `got function <record>`. With
//! `EXT_TELEMETRY_ONLY=1` it has no hooks at all, only the telemetry subscription
//! (buffered for a whole second), and takes 300 ms over each batch.

use std::time::Duration;

use ironlambda_extension::{
    Buffering, Error, Extension, TelemetryConfig, TelemetryRecord, TelemetryType,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let telemetry_only = std::env::var_os("EXT_TELEMETRY_ONLY").is_some();
    let mut extension = Extension::new();
    if !telemetry_only {
        extension = hooks(extension);
    }
    if let Ok(which) = std::env::var("EXT_SUBSCRIBE") {
        let timeout_ms = if telemetry_only { 1000 } else { 25 };
        let mut config = TelemetryConfig::default()
            .types([TelemetryType::Platform, TelemetryType::Function])
            .buffering(Buffering {
                timeout_ms: Some(timeout_ms),
                ..Buffering::default()
            });
        if which == "logs" {
            config = config.logs_api();
        }
        extension = extension.with_telemetry(config, move |batch| async move {
            if telemetry_only {
                // A slow consumer: what it is handed must still be handled at shutdown.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            for event in batch {
                match event.parse() {
                    TelemetryRecord::Start(r) => println!("got {} {}", event.kind, r.request_id),
                    TelemetryRecord::RuntimeDone(r) | TelemetryRecord::Report(r, _) => println!(
                        "got {} {} {}",
                        event.kind,
                        r.request_id,
                        r.status.as_deref().unwrap_or("-")
                    ),
                    TelemetryRecord::FunctionLog(line) => println!("got function {line}"),
                    _ => println!("got {}", event.kind),
                }
            }
        });
    }
    extension.run().await
}

/// The INVOKE and SHUTDOWN hooks.
fn hooks(extension: Extension) -> Extension {
    extension
        .on_invoke(|event| async move {
            println!(
                "INVOKE {} deadline={} pid={}",
                event.request_id,
                event.deadline_ms,
                std::process::id()
            );
            if std::env::var_os("EXT_HANG").is_some() {
                std::future::pending::<()>().await;
            }
            if let Ok(path) = std::env::var("EXT_WAIT_FOR") {
                // Bounded: give up after a minute rather than hang a test run.
                for _ in 0..3000 {
                    if std::path::Path::new(&path).exists() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            println!("done {}", event.request_id);
            Ok(())
        })
        .on_shutdown(|event| async move {
            println!(
                "SHUTDOWN {} deadline={}",
                event.shutdown_reason, event.deadline_ms
            );
            if std::env::var_os("EXT_HANG_AT_SHUTDOWN").is_some() {
                std::future::pending::<()>().await;
            }
            Ok(())
        })
}
