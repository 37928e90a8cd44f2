//! The benchmark echo function on the reference runtime (`lambda_runtime`), written as its
//! documentation shows, on a current-thread tokio runtime like ours.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    match event.payload.get("fail").and_then(Value::as_str) {
        Some("error") => Err("requested failure".into()),
        Some("panic") => panic!("requested panic"),
        _ => Ok(event.payload),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(echo)).await
}
