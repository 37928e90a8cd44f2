//! The concurrency benchmark on ironlambda: each invocation awaits a 5 ms timer (an I/O
//! wait standing in for a downstream call), then returns its event. Run with
//! `AWS_LAMBDA_MAX_CONCURRENCY=N` on the multi-thread runtime `#[tokio::main]` gives.

use std::time::Duration;

use ironlambda_runtime::{Context, Error, handler_fn};
use serde_json::Value;

async fn wait_then_echo(event: Value, _ctx: Context) -> Result<Value, Error> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(event)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ironlambda_runtime::run(handler_fn(wait_then_echo)).await
}
