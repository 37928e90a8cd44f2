//! The echo function on ironlambda under `#[tokio::main]` (the multi-thread runtime most
//! users write), for the flavour rows of `make bench`.

use ironlambda_runtime::{Context, Error, handler_fn};
use serde_json::Value;

async fn echo(event: Value, _ctx: Context) -> Result<Value, Error> {
    Ok(event)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ironlambda_runtime::run(handler_fn(echo)).await
}
