//! The concurrency benchmark on the reference runtime: `lambda_runtime::run_concurrent`
//! (feature `concurrency-tokio`), written as its documentation shows; each invocation
//! awaits a 5 ms timer, then returns its event. The timer is tokio's, or with
//! `{"timer": "exact"}` in the event one that does not round the wait up (see
//! `shared/exact_timer.rs`).

#[path = "shared/exact_timer.rs"]
mod exact_timer;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

async fn wait_then_echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    exact_timer::wait_5ms(&event.payload).await?;
    Ok(event.payload)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run_concurrent(service_fn(wait_then_echo)).await
}
