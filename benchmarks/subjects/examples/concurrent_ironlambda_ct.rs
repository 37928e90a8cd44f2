//! The concurrency benchmark on ironlambda's default entry point, `start`: one thread, a
//! current-thread runtime, the invocation loops interleaved on it. Each invocation awaits a
//! 5 ms timer (tokio's, or with `{"timer": "exact"}` one that does not round the wait up;
//! see `shared/exact_timer.rs`), then returns its event. Run with
//! `AWS_LAMBDA_MAX_CONCURRENCY=N`.

#[path = "../../examples/shared/exact_timer.rs"]
mod exact_timer;

use ironlambda_runtime::{Context, Error, handler_fn};
use serde_json::Value;

async fn wait_then_echo(event: Value, _ctx: Context) -> Result<Value, Error> {
    exact_timer::wait_5ms(&event).await?;
    Ok(event)
}

fn main() -> Result<(), Error> {
    ironlambda_runtime::start(handler_fn(wait_then_echo))
}
