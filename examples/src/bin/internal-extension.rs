//! A function with an internal extension: the extension runs inside the function process,
//! beside the runtime loop, and counts the invocations it is told about.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ironlambda_extension::Extension;
use ironlambda_runtime::{Context, Error, handler_fn};
use serde_json::{Value, json};

async fn handler(event: Value, ctx: Context) -> Result<Value, Error> {
    Ok(json!({ "request_id": ctx.request_id, "echo": event }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    // Register before the runtime loop starts: registration closes at its first /next.
    Extension::new()
        .with_name("invocation-counter")
        .on_invoke(move |event| {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                println!("invocation-counter: invocation {n} is {}", event.request_id);
                Ok(())
            }
        })
        .spawn_internal()
        .await?;
    ironlambda_runtime::run(handler_fn(handler)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironlambda_runtime::Config;

    #[tokio::test]
    async fn echoes_with_the_request_id() {
        let ctx = Context::new("req-7", Arc::new(Config::default()));
        let out = handler(json!({"a": 1}), ctx).await.unwrap();
        assert_eq!(out, json!({"request_id": "req-7", "echo": {"a": 1}}));
    }
}
