//! A fast mock of the Runtime API: hands out a canned event `total` times over keep-alive
//! HTTP/1.1 and records, per invocation, the time from serving `/next` to receiving the
//! whole `/response` (or `/error`). Once every event is answered, further `/next` calls
//! stay open, as Lambda's do while no event is waiting.

use std::convert::Infallible;
use std::future::pending;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ironlambda_api_client::headers;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What one run recorded.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    /// When the first `/next` arrived.
    pub first_next: Option<Instant>,
    /// When the first event was served and the last answer completed.
    pub first_served: Option<Instant>,
    pub last_answered: Option<Instant>,
    /// Served → whole answer received, per invocation.
    pub latencies: Vec<Duration>,
    /// Served → first byte of the answer's body received, per invocation.
    pub first_bytes: Vec<Duration>,
    /// How many answers were `/error` posts.
    pub errors: usize,
}

struct State {
    event: Bytes,
    total: usize,
    recorded: Mutex<Inner>,
    finished: Notify,
    first_next: Notify,
}

#[derive(Default)]
struct Inner {
    served: Vec<Instant>,
    rec: Recorded,
}

/// A running mock Runtime API.
pub struct MockApi {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl MockApi {
    /// Listens on a free loopback port; serves `event` `total` times.
    pub async fn start(event: Bytes, total: usize) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            event,
            total,
            recorded: Mutex::new(Inner::default()),
            finished: Notify::new(),
            first_next: Notify::new(),
        });
        let shared = state.clone();
        let server = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(req, &state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(MockApi {
            addr,
            state,
            server,
        })
    }

    /// The `AWS_LAMBDA_RUNTIME_API` value.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until every event is answered.
    pub async fn finished(&self) {
        self.state.finished.notified().await;
    }

    /// Waits until the first `/next` arrives.
    pub async fn first_next(&self) {
        self.state.first_next.notified().await;
    }

    /// What was recorded, and the server stopped.
    pub fn stop(self) -> Recorded {
        self.server.abort();
        let inner = self
            .state
            .recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        inner.rec.clone()
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path.ends_with("/invocation/next") {
        let served = {
            let mut inner = state.recorded.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if inner.rec.first_next.is_none() {
                inner.rec.first_next = Some(now);
                state.first_next.notify_one();
            }
            let n = inner.served.len();
            if n < state.total {
                inner.served.push(now);
                inner.rec.first_served.get_or_insert(now);
                Some(n)
            } else {
                None
            }
        };
        let Some(n) = served else {
            return pending().await;
        };
        let mut r = reply(StatusCode::OK, state.event.clone());
        let h = r.headers_mut();
        h.insert(headers::REQUEST_ID, http::HeaderValue::from(n));
        h.insert(
            headers::DEADLINE_MS,
            http::HeaderValue::from_static("99999999999999"),
        );
        h.insert(
            headers::INVOKED_FUNCTION_ARN,
            http::HeaderValue::from_static("arn:aws:lambda:us-east-1:000000000000:function:echo"),
        );
        h.insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        return r;
    }
    let id = path
        .strip_prefix("/2018-06-01/runtime/invocation/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse::<usize>().ok());
    let is_error = path.ends_with("/error");
    // Read the whole answer before stopping the clock, a frame at a time (a streamed
    // answer may be far larger than anything worth holding), noting when its first
    // byte came.
    let mut body = req.into_body();
    let mut first_byte = None;
    while let Some(Ok(frame)) = body.frame().await {
        if first_byte.is_none() && frame.data_ref().is_some_and(|d| !d.is_empty()) {
            first_byte = Some(Instant::now());
        }
    }
    let now = Instant::now();
    let mut inner = state.recorded.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(served) = id.and_then(|n| inner.served.get(n).copied()) {
        inner.rec.latencies.push(now - served);
        inner
            .rec
            .first_bytes
            .push(first_byte.unwrap_or(now) - served);
        inner.rec.last_answered = Some(now);
        if is_error {
            inner.rec.errors += 1;
        }
        if inner.rec.latencies.len() == state.total {
            state.finished.notify_one();
        }
    }
    reply(
        StatusCode::ACCEPTED,
        Bytes::from_static(br#"{"status":"OK"}"#),
    )
}
