//! The listeners: one loopback port per environment serving the Invoke API and that
//! environment's Runtime and Extensions APIs, and the Function URL front door's port.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use ironlambda_api_client::wire::ApiErrorBody;
use ironlambda_api_client::{ExtensionRoute, RuntimeRoute};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::calls::Calls;
use crate::config::FunctionConfig;
use crate::faults::Faults;
use crate::http_util::{Reply, json};
use crate::invoke_api::InvokeTarget;
use crate::{extensions_api, function_url, invoke_api, runtime_api};

/// What every connection's handlers share: the functions the Invoke API serves, and the
/// one environment whose Runtime and Extensions APIs this listener serves.
pub(crate) struct Shared {
    pub(crate) functions: Arc<Vec<InvokeTarget>>,
    /// The function of this listener's environment.
    pub(crate) config: Arc<FunctionConfig>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) calls: Calls,
}

/// How long a client may take to send a request head, and how long a keep-alive
/// connection may sit idle between requests, before it is closed. Requests in progress
/// (a `/next` long-poll, a streamed response) are not affected.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after a failed `accept` (out of descriptors, say) before trying again, so the
/// loop waits for room instead of spinning a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections until the task is aborted; aborting it also ends every connection.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    accept(listener, move |req, _peer| {
        let shared = shared.clone();
        async move { route(req, &shared).await }
    })
    .await
}

/// Serves the Function URL front door for `functions` until the task is aborted.
pub(crate) async fn serve_function_urls(listener: TcpListener, targets: Arc<Vec<InvokeTarget>>) {
    let functions = Arc::new(function_url::FunctionUrls::new(targets));
    accept(listener, move |req, peer| {
        let functions = functions.clone();
        async move {
            Ok::<_, std::convert::Infallible>(function_url::handle(req, peer, &functions).await)
        }
    })
    .await
}

/// The accept loop: each connection served by `handle` (given the request and the
/// client's address) on a task of its own, with the head and idle timeouts.
async fn accept<H, Fut, B, E>(listener: TcpListener, handle: H)
where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        // EMFILE and friends: the error repeats until a descriptor frees up.
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handle = handle.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(req, peer));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEAD_TIMEOUT)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

/// Routes a request. `Err` closes the connection without an answer (an injected fault).
async fn route(req: Request<Incoming>, shared: &Shared) -> Result<Reply, runtime_api::Dropped> {
    let path = req.uri().path().to_owned();
    if path.starts_with(invoke_api::PREFIX) || path.starts_with(invoke_api::STREAMING_PREFIX) {
        return Ok(invoke_api::handle(req, &shared.functions).await);
    }
    if let Some(route) = RuntimeRoute::parse(&path) {
        return runtime_api::handle(route, req, &shared.calls, &shared.faults).await;
    }
    if let Some(route) = ExtensionRoute::parse(&path) {
        if shared.config.extensions_disabled {
            // edge-cases B15: with extensions disabled, their APIs do not exist.
            return Ok(json(
                StatusCode::NOT_FOUND,
                ApiErrorBody::new("NotFound", "Extensions are disabled in this environment")
                    .to_json(),
            ));
        }
        return Ok(extensions_api::handle(route, req, &shared.calls).await);
    }
    if path == "/2018-06-01/ping" {
        return Ok(json(StatusCode::OK, "pong"));
    }
    Ok(json(
        StatusCode::NOT_FOUND,
        ApiErrorBody::new("NotFound", format!("No route for {} {path}", req.method())).to_json(),
    ))
}
