//! The concurrency benchmark on ironlambda: each invocation awaits a 5 ms timer (an I/O
//! wait standing in for a downstream call), then returns its event. Run with
//! `AWS_LAMBDA_MAX_CONCURRENCY=N` on the multi-thread runtime `#[tokio::main]` gives.
//!
//! The timer is tokio's, or with `{"timer": "exact"}` in the event one that does not round
//! the wait up (see `shared/exact_timer.rs`).

#[path = "shared/exact_timer.rs"]
mod exact_timer;

use ironlambda_runtime::{Context, Error, handler_fn};
use serde_json::Value;

async fn wait_then_echo(event: Value, _ctx: Context) -> Result<Value, Error> {
    exact_timer::wait_5ms(&event).await?;
    Ok(event)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ironlambda_runtime::run(handler_fn(wait_then_echo)).await
}
