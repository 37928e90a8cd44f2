//! The benchmark streaming function on the reference runtime (`lambda_runtime`'s
//! `streaming::channel`, as its documentation shows): `{"chunks": N, "chunk_bytes": S}`
//! streams N chunks of S bytes.

use bytes::Bytes;
use lambda_runtime::streaming::{Body, Response, channel};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

async fn stream(event: LambdaEvent<Value>) -> Result<Response<Body>, Error> {
    let chunks = event.payload["chunks"].as_u64().unwrap_or(1);
    let size = event.payload["chunk_bytes"].as_u64().unwrap_or(16) as usize;
    let chunk = Bytes::from(vec![b'x'; size]);
    let (mut sender, body) = channel();
    tokio::spawn(async move {
        for _ in 0..chunks {
            if sender.send_data(chunk.clone()).await.is_err() {
                return;
            }
        }
    });
    Ok(Response::from(body))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(stream)).await
}
