//! The benchmark streaming function on ironlambda: `{"chunks": N, "chunk_bytes": S}` streams
//! N chunks of S bytes from a sender, as the runtime's docs show.

use bytes::Bytes;
use ironlambda_runtime::{Context, Error, Streaming, handler_fn};
use serde_json::Value;

async fn stream(event: Value, _ctx: Context) -> Result<Streaming, Error> {
    let chunks = event["chunks"].as_u64().unwrap_or(1);
    let size = event["chunk_bytes"].as_u64().unwrap_or(16) as usize;
    // One chunk, shared: the benchmark measures the runtime, not the allocator.
    let chunk = Bytes::from(vec![b'x'; size]);
    let (sender, response) = Streaming::channel();
    tokio::spawn(async move {
        for _ in 0..chunks {
            if sender.send(chunk.clone()).await.is_err() {
                return;
            }
        }
    });
    Ok(response)
}

fn main() -> Result<(), Error> {
    ironlambda_runtime::start(handler_fn(stream))
}
