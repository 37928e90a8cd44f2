//! A Function URL response (deploy with the URL's invoke mode `RESPONSE_STREAM`): a status,
//! a header and a cookie go out first, then the page streams in one line at a time.
//!
//! Any event works (a Function URL sends its HTTP request as the event); `{"lines": N}`
//! sets how many lines the page has (default 3).

use std::time::Duration;

use ironlambda_runtime::{Context, Error, HttpIntegration, Streaming, handler_fn};
use serde::Deserialize;

#[derive(Deserialize)]
struct Event {
    lines: Option<u32>,
}

async fn page(event: Event, ctx: Context) -> Result<HttpIntegration, Error> {
    let lines = event.lines.unwrap_or(3);
    let (sender, body) = Streaming::channel();
    tokio::spawn(async move {
        for n in 1..=lines {
            if sender.send(format!("line {n} of {lines}\n")).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    Ok(HttpIntegration::new(200)
        .header("content-type", "text/plain; charset=utf-8")
        .header("x-request-id", ctx.request_id)
        .cookie("visited=yes; Path=/; HttpOnly")
        .stream(body))
}

fn main() -> Result<(), Error> {
    ironlambda_runtime::start(handler_fn(page))
}
