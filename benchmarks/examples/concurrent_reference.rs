//! The concurrency benchmark on the reference runtime: `lambda_runtime::run_concurrent`
//! (feature `concurrency-tokio`), written as its documentation shows; each invocation
//! awaits a 5 ms timer, then returns its event.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

async fn wait_then_echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(event.payload)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run_concurrent(service_fn(wait_then_echo)).await
}
