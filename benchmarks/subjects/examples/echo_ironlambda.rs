//! The benchmark echo function on ironlambda: returns its event; `{"fail":"error"}` and
//! `{"fail":"panic"}` take the failure paths.

use ironlambda_runtime::{Context, Error, handler_fn};
use serde_json::Value;

async fn echo(event: Value, _ctx: Context) -> Result<Value, Error> {
    match event.get("fail").and_then(Value::as_str) {
        Some("error") => Err(Error::new("Function.Requested", "requested failure")),
        Some("panic") => panic!("requested panic"),
        _ => Ok(event),
    }
}

fn main() -> Result<(), Error> {
    ironlambda_runtime::start(handler_fn(echo))
}
