//! One HTTP client shared by every invocation, the way a function on Lambda Managed
//! Instances (`AWS_LAMBDA_MAX_CONCURRENCY` above 1) shares its AWS SDK clients: built once
//! at init, used by all the invocations that run at once, with one connection pool.
//!
//! Event: `{"path": "/2018-06-01/ping", "wait_ms": 0}` (both optional). The function
//! waits `wait_ms`, then GETs `path` from the host of its Runtime API (the one server a
//! local run is sure to have) and answers `{"status", "body", "in_flight", "peak"}`:
//! `in_flight` is how many invocations were running when it started, `peak` the most
//! there have been at once. Run it under `ironlambda-emulator --max-concurrency 4` and
//! send four invokes together to see `peak` reach 4.
//!
//! The handler is shared by reference among concurrent invocations, so its state is
//! `Sync`: the client is (it clones cheaply and pools connections), and the counters are
//! atomics. On the default multi-thread runtime (`#[tokio::main]`) the invocations also
//! run in parallel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ironlambda_runtime::{Context, Error, Handler};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Request {
    path: Option<String>,
    #[serde(default)]
    wait_ms: u64,
}

#[derive(Serialize)]
struct Response {
    status: u16,
    body: String,
    in_flight: usize,
    peak: usize,
}

/// Built once at init; every invocation borrows it.
struct Fetcher {
    client: Client<HttpConnector, Empty<Bytes>>,
    base: String,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// Counts an invocation as running for as long as it lives.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Handler for Fetcher {
    type Event = Request;
    type Output = Response;
    type Error = Error;

    async fn call(&self, event: Request, _ctx: Context) -> Result<Response, Error> {
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _running = Running(&self.in_flight);
        self.peak.fetch_max(in_flight, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(event.wait_ms)).await;
        let path = event.path.as_deref().unwrap_or("/2018-06-01/ping");
        let uri: http::Uri = format!("{}{path}", self.base).parse()?;
        let answer = self.client.get(uri).await?;
        let status = answer.status().as_u16();
        let body = answer.into_body().collect().await?.to_bytes();
        Ok(Response {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            in_flight,
            peak: self.peak.load(Ordering::SeqCst),
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    ironlambda_runtime::run_with_init(|_config| async {
        let api = std::env::var("AWS_LAMBDA_RUNTIME_API")
            .map_err(|_| Error::new("Config.Missing", "AWS_LAMBDA_RUNTIME_API is not set"))?;
        Ok::<_, Error>(Fetcher {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{api}"),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    })
    .await
}
