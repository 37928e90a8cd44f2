//! A function that cleans up when Lambda shuts it down: it buffers what it handled and
//! flushes the buffer from a graceful-shutdown hook on SIGTERM. With `FLUSH_TO=<path>` the
//! flush writes the buffer to that file (the tests read it).

use std::sync::{Arc, Mutex};

use ironlambda_runtime::{Context, Error, GracefulShutdown, handler_fn};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Event {
    item: String,
}

type Buffer = Arc<Mutex<Vec<String>>>;

async fn handle(buffer: Buffer, event: Event) -> Result<Value, Error> {
    let mut items = buffer.lock().unwrap_or_else(|p| p.into_inner());
    items.push(event.item);
    Ok(json!({ "buffered": items.len() }))
}

fn flush(buffer: &Buffer) -> String {
    let items = buffer.lock().unwrap_or_else(|p| p.into_inner());
    format!("flushed {} items: {}", items.len(), items.join(","))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let buffer = Buffer::default();
    let at_shutdown = buffer.clone();
    GracefulShutdown::new()
        .hook("flush buffer", move || async move {
            let line = flush(&at_shutdown);
            println!("{line}");
            if let Ok(path) = std::env::var("FLUSH_TO") {
                if let Err(e) = std::fs::write(&path, &line) {
                    eprintln!("cannot write {path}: {e}");
                }
            }
        })
        .install()
        .await?;
    ironlambda_runtime::run(handler_fn(move |event: Event, _ctx: Context| {
        handle(buffer.clone(), event)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buffers_then_flushes() {
        let buffer = Buffer::default();
        for item in ["a", "b"] {
            handle(buffer.clone(), Event { item: item.into() })
                .await
                .unwrap();
        }
        assert_eq!(flush(&buffer), "flushed 2 items: a,b");
    }
}
