//! An external extension for the end-to-end tests. It prints what it receives:
//! `INVOKE <id> deadline=<ms>`, `done <id>`, `SHUTDOWN <reason> deadline=<ms>`.
//! With `EXT_WAIT_FOR=<path>` each INVOKE hook waits until that file exists; with
//! `EXT_HANG=1` the INVOKE hook never returns.

use std::time::Duration;

use ironlambda_extension::{Error, Extension};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    Extension::new()
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
        })
        .run()
        .await
}
