//! An external extension for the end-to-end tests. It prints what it receives:
//! `INVOKE <id> deadline=<ms>`, `done <id>`, `SHUTDOWN <reason> deadline=<ms>`.
//! With `EXT_WAIT_FOR=<path>` each INVOKE hook waits until that file exists; with
//! `EXT_HANG=1` the INVOKE hook never returns; with `EXT_SUBSCRIBE=telemetry|logs` it
//! subscribes to platform events and function logs through that API and prints
//! `got <type> <request id or log line>`.

use std::time::Duration;

use ironlambda_extension::{
    Buffering, Error, Extension, TelemetryConfig, TelemetryRecord, TelemetryType,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut extension = Extension::new()
        .on_invoke(|event| async move {
            println!("INVOKE {} deadline={}", event.request_id, event.deadline_ms);
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
            Ok(())
        });
    if let Ok(which) = std::env::var("EXT_SUBSCRIBE") {
        let mut config = TelemetryConfig::default()
            .types([TelemetryType::Platform, TelemetryType::Function])
            .buffering(Buffering {
                timeout_ms: Some(25),
                ..Buffering::default()
            });
        if which == "logs" {
            config = config.logs_api();
        }
        extension = extension.with_telemetry(config, |batch| async move {
            for event in batch {
                match event.parse() {
                    TelemetryRecord::Start(r)
                    | TelemetryRecord::RuntimeDone(r)
                    | TelemetryRecord::Report(r, _) => {
                        println!("got {} {}", event.kind, r.request_id)
                    }
                    TelemetryRecord::FunctionLog(line) => println!("got function {line}"),
                    _ => println!("got {}", event.kind),
                }
            }
        });
    }
    extension.run().await
}
