//! A streamed response (deploy with a Function URL in `RESPONSE_STREAM` mode, or call it
//! with `InvokeWithResponseStream`). The event says what to stream:
//!
//! - `{"chunks": N, "chunk_bytes": S}` streams N chunks of S bytes; chunk `i` repeats the
//!   byte `b'a' + i % 26`.
//! - `"interval_ms": T` waits T ms before each chunk after the first (default 0).
//! - `"fail_after": K` fails after K chunks with errorType `StreamInterrupted`: the caller
//!   gets the K chunks, then the error.
//!
//! Chunks are made one at a time and sent as they are made, so memory stays flat however
//! much is streamed.

use std::time::Duration;

use bytes::Bytes;
use ironlambda_runtime::{Context, Error, StreamSender, Streaming, handler_fn};
use serde::Deserialize;

#[derive(Deserialize, Debug, Clone, Copy)]
struct Plan {
    chunks: u64,
    chunk_bytes: usize,
    #[serde(default)]
    interval_ms: u64,
    fail_after: Option<u64>,
}

/// The bytes of chunk `i`.
fn chunk(i: u64, len: usize) -> Bytes {
    Bytes::from(vec![b'a' + (i % 26) as u8; len])
}

async fn produce(plan: Plan, sender: StreamSender) {
    for i in 0..plan.chunks {
        if plan.fail_after == Some(i) {
            let error = Error::new("StreamInterrupted", format!("stopped after {i} chunks"));
            let _ = sender.fail(error).await;
            return;
        }
        if i > 0 && plan.interval_ms > 0 {
            tokio::time::sleep(Duration::from_millis(plan.interval_ms)).await;
        }
        if sender.send(chunk(i, plan.chunk_bytes)).await.is_err() {
            return; // the invocation is over: nobody reads any more
        }
    }
}

async fn stream(plan: Plan, _ctx: Context) -> Result<Streaming, Error> {
    let (sender, response) = Streaming::channel();
    tokio::spawn(produce(plan, sender));
    Ok(response.content_type("application/octet-stream"))
}

fn main() -> Result<(), Error> {
    ironlambda_runtime::start(handler_fn(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_core::Stream;

    #[tokio::test]
    async fn chunks_follow_the_alphabet_and_a_failure_comes_last() {
        let plan = Plan {
            chunks: 30,
            chunk_bytes: 3,
            interval_ms: 0,
            fail_after: Some(28),
        };
        let (sender, mut response) = Streaming::channel();
        let producer = tokio::spawn(produce(plan, sender));
        let mut chunks = Vec::new();
        let mut failure = None;
        while let Some(item) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut response).poll_next(cx)).await
        {
            match item {
                Ok(c) => chunks.push(c),
                Err(e) => failure = Some(e.error_type().to_owned()),
            }
        }
        producer.await.unwrap();
        assert_eq!(chunks.len(), 28);
        assert_eq!(chunks[0], "aaa");
        assert_eq!(chunks[26], "aaa");
        assert_eq!(chunks[27], "bbb");
        assert_eq!(failure.as_deref(), Some("StreamInterrupted"));
    }
}
