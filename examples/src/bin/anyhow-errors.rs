//! A handler that returns `anyhow::Result`, as many Rust programs already do: `?` and
//! `.context(…)` work as usual, and Lambda's `errorType` is the first concrete error type
//! along the cause chain.
//!
//! - `{"count":"3"}` → `{"doubled":6}`
//! - `{"count":"x"}` → errorType `ParseIntError`, errorMessage
//!   `reading the count: invalid digit found in string`
//! - `{"count":"0"}` → errorType `Error`, errorMessage `the count must be positive`

use anyhow::{Context as _, bail};
use ironlambda_runtime::{Context, Error, handler_fn};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Event {
    count: String,
}

#[derive(Serialize, Debug, PartialEq)]
struct Doubled {
    doubled: u64,
}

async fn double(event: Event, _ctx: Context) -> anyhow::Result<Doubled> {
    let count: u64 = event.count.trim().parse().context("reading the count")?;
    if count == 0 {
        bail!("the count must be positive");
    }
    Ok(Doubled { doubled: count * 2 })
}

fn main() -> Result<(), Error> {
    ironlambda_runtime::start(handler_fn(double))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironlambda_runtime::Config;
    use std::sync::Arc;

    async fn run(count: &str) -> Result<Doubled, Error> {
        let ctx = Context::new("test", Arc::new(Config::default()));
        let event = Event {
            count: count.into(),
        };
        double(event, ctx).await.map_err(Error::from)
    }

    #[tokio::test]
    async fn errors_report_the_concrete_type_and_the_whole_chain() {
        let e = run("x").await.unwrap_err();
        assert_eq!(
            (e.error_type(), e.message()),
            (
                "ParseIntError",
                "reading the count: invalid digit found in string"
            )
        );
        let e = run("0").await.unwrap_err();
        assert_eq!(
            (e.error_type(), e.message()),
            ("Error", "the count must be positive")
        );
        assert_eq!(run("3").await.unwrap(), Doubled { doubled: 6 });
    }
}
