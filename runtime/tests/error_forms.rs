//! Every error type a handler may return compiles as a handler error, `?` and
//! `Err("text".into())` work inside it as in plain Rust, and each reports the documented
//! `errorType` and message.

use std::num::ParseIntError;
use std::sync::Arc;

use ironlambda_runtime::{Config, Context, Error, LocalHandler, handler_fn};

/// What Lambda would be told for `handler`'s answer to `event`.
async fn reported<H: LocalHandler<Event = String>>(handler: H, event: &str) -> Error {
    let ctx = Context::new("test", Arc::new(Config::default()));
    match handler.call(event.to_owned(), ctx).await {
        Ok(_) => panic!("the handler was expected to fail"),
        Err(e) => e.into(),
    }
}

fn parse(s: &str) -> Result<u32, ParseIntError> {
    s.parse()
}

async fn with_ours(event: String, _: Context) -> Result<u32, Error> {
    if event.is_empty() {
        return Err("empty event".into());
    }
    Ok(parse(&event)?)
}

async fn with_std(event: String, _: Context) -> Result<u32, ParseIntError> {
    parse(&event)
}

async fn with_box(
    event: String,
    _: Context,
) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    if event.is_empty() {
        return Err("empty event".into());
    }
    Ok(parse(&event)?)
}

async fn with_string(event: String, _: Context) -> Result<u32, String> {
    parse(&event).map_err(|e| format!("bad number: {e}"))
}

async fn with_str(_: String, _: Context) -> Result<u32, &'static str> {
    Err("not today")
}

async fn with_anyhow(event: String, _: Context) -> anyhow::Result<u32> {
    use anyhow::Context as _;
    let n = parse(&event).context("reading the event")?;
    Ok(n)
}

async fn with_eyre(event: String, _: Context) -> eyre::Result<u32> {
    use eyre::WrapErr as _;
    let n = parse(&event).wrap_err("reading the event")?;
    Ok(n)
}

const BAD_DIGIT: &str = "invalid digit found in string";

#[tokio::test]
async fn our_error_takes_question_marks_and_text() {
    let e = reported(handler_fn(with_ours), "x").await;
    assert_eq!((e.error_type(), e.message()), ("ParseIntError", BAD_DIGIT));
    let e = reported(handler_fn(with_ours), "").await;
    assert_eq!((e.error_type(), e.message()), ("Error", "empty event"));
}

#[tokio::test]
async fn a_std_error_reports_its_short_type_name() {
    let e = reported(handler_fn(with_std), "x").await;
    assert_eq!((e.error_type(), e.message()), ("ParseIntError", BAD_DIGIT));
}

#[tokio::test]
async fn a_boxed_error_reports_the_type_inside_it() {
    let e = reported(handler_fn(with_box), "x").await;
    assert_eq!((e.error_type(), e.message()), ("ParseIntError", BAD_DIGIT));
    let e = reported(handler_fn(with_box), "").await;
    assert_eq!((e.error_type(), e.message()), ("Error", "empty event"));
}

#[tokio::test]
async fn strings_report_error_with_their_text() {
    let e = reported(handler_fn(with_string), "x").await;
    assert_eq!(
        (e.error_type(), e.message()),
        ("Error", "bad number: invalid digit found in string")
    );
    let e = reported(handler_fn(with_str), "x").await;
    assert_eq!((e.error_type(), e.message()), ("Error", "not today"));
}

#[tokio::test]
async fn anyhow_reports_the_root_type_and_the_whole_chain() {
    let e = reported(handler_fn(with_anyhow), "x").await;
    assert_eq!(
        (e.error_type(), e.message()),
        (
            "ParseIntError",
            "reading the event: invalid digit found in string"
        )
    );
}

#[tokio::test]
async fn eyre_reports_the_root_type_and_the_whole_chain() {
    let e = reported(handler_fn(with_eyre), "x").await;
    assert_eq!(
        (e.error_type(), e.message()),
        (
            "ParseIntError",
            "reading the event: invalid digit found in string"
        )
    );
}

/// With the `anyhow` feature, `?` on an ironlambda error works in anyhow code, and the
/// error keeps its type on the way back.
#[test]
fn our_error_survives_anyhow() {
    fn inner() -> Result<(), Error> {
        Err(Error::new("Function.Custom", "boom"))
    }
    fn outer() -> anyhow::Result<()> {
        inner()?;
        Ok(())
    }
    let e = Error::from(outer().unwrap_err());
    assert_eq!((e.error_type(), e.message()), ("Function.Custom", "boom"));
}
