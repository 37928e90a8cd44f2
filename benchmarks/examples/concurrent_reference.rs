//! The concurrency benchmark on the reference runtime: `lambda_runtime::run_concurrent`
//! (feature `concurrency-tokio`), written as its documentation shows; each invocation
//! awaits a 5 ms timer, then returns its event. The timer is tokio's, or with
//! `{"timer": "exact"}` in the event one that does not round the wait up (see
//! `shared/exact_timer.rs`).

#[path = "shared/exact_timer.rs"]
mod exact_timer;

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

async fn wait_then_echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    const WAIT: Duration = Duration::from_millis(5);
    if event.payload.get("timer").and_then(Value::as_str) == Some("exact") {
        exact_timer::wait(WAIT).await?;
    } else {
        tokio::time::sleep(WAIT).await;
    }
    Ok(event.payload)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run_concurrent(service_fn(wait_then_echo)).await
}
