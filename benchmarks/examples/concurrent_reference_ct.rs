//! The concurrency benchmark on the reference runtime on a current-thread runtime:
//! `lambda_runtime::run_concurrent` (feature `concurrency-tokio`) under
//! `#[tokio::main(flavor = "current_thread")]`, so its loops interleave on one thread as
//! ours do under `start`. Each invocation awaits a 5 ms timer (see `shared/exact_timer.rs`),
//! then returns its event.

#[path = "shared/exact_timer.rs"]
mod exact_timer;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

async fn wait_then_echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    exact_timer::wait_5ms(&event.payload).await?;
    Ok(event.payload)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run_concurrent(service_fn(wait_then_echo)).await
}
