//! `{"name":"Ada"}` → `{"message":"Hello, Ada!"}`; without a name, the world is greeted.

use ironlambda_runtime::{Context, Error, handler_fn};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Request {
    name: Option<String>,
}

#[derive(Serialize, Debug, PartialEq)]
struct Response {
    message: String,
}

async fn hello(event: Request, ctx: Context) -> Result<Response, Error> {
    let name = event.name.as_deref().unwrap_or("world");
    // Logged through `tracing`: the line carries this invocation's request id.
    let remaining = ctx.remaining().map(|d| format!("{} ms", d.as_millis()));
    tracing::info!(
        "greeting {name} ({} left)",
        remaining.as_deref().unwrap_or("no deadline")
    );
    Ok(Response {
        message: format!("Hello, {name}!"),
    })
}

fn main() -> Result<(), Error> {
    ironlambda_runtime::start(handler_fn(hello))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironlambda_runtime::Config;
    use std::sync::Arc;

    fn ctx() -> Context {
        Context::new("test-request", Arc::new(Config::default()))
    }

    #[tokio::test]
    async fn greets_by_name() {
        let r = hello(
            Request {
                name: Some("Ada".into()),
            },
            ctx(),
        )
        .await
        .unwrap();
        assert_eq!(r.message, "Hello, Ada!");
    }

    #[tokio::test]
    async fn greets_the_world_without_a_name() {
        let r = hello(Request { name: None }, ctx()).await.unwrap();
        assert_eq!(r.message, "Hello, world!");
    }

    #[test]
    fn event_shape() {
        let e: Request = serde_json::from_str("{}").unwrap();
        assert!(e.name.is_none());
        assert!(serde_json::from_str::<Request>(r#"{"name":5}"#).is_err());
    }
}
