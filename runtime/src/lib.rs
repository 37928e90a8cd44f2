//! Write AWS Lambda functions in Rust.
//!
//! A handler is an async fn taking the event and a [`Context`]:
//!
//! ```no_run
//! use ironlambda_runtime::{Context, Error, handler_fn};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Request { name: Option<String> }
//! #[derive(Serialize)]
//! struct Response { message: String }
//!
//! async fn hello(event: Request, _ctx: Context) -> Result<Response, Error> {
//!     let name = event.name.unwrap_or_else(|| "world".into());
//!     Ok(Response { message: format!("Hello, {name}!") })
//! }
//!
//! fn main() -> Result<(), Error> {
//!     ironlambda_runtime::start(handler_fn(hello))
//! }
//! ```
//!
//! What the loop guarantees:
//! - An event that does not deserialize fails that invocation (`Runtime.InvalidEvent`, with
//!   the field path); the loop goes on.
//! - A handler error is reported with its short type name (`ParseIntError`); a panic is
//!   reported as `Panic` with the panic text; the loop goes on.
//! - A failure before the loop starts (bad configuration, a failing init) is posted to
//!   `/runtime/init/error` and returned, so `main` exits non-zero.
//! - `/next` failures are retried with bounded backoff, then returned as an error.
//! - With `AWS_LAMBDA_MAX_CONCURRENCY=N` (Lambda Managed Instances), N loops share the
//!   handler, each on its own connection. Through [`run`] they run on whatever tokio
//!   runtime runs it: they interleave on a current-thread runtime and run in parallel on a
//!   multi-thread one, so `run` takes a [`Handler`] (`Send + Sync`, `Send` future). Through
//!   [`start`] and [`run_local`] they interleave on the calling thread, so any
//!   [`LocalHandler`] runs, `Send` or not. Handlers that mostly wait are cheaper on one
//!   thread (in the benchmarks, less than half the CPU per invocation at N = 16, at the
//!   same rate); handlers that compute want a multi-thread runtime and `run`. The first
//!   fatal error stops them all.
//!   `_X_AMZN_TRACE_ID` is then never set; read the trace from [`Context::xray_trace_id`]
//!   or [`trace_id`] (and pass it on as the `X-Amzn-Trace-Id` header of calls that should
//!   join the trace).
//! - With the `graceful-shutdown` feature, `GracefulShutdown` runs cleanup hooks on SIGTERM.
//! - Logs go through `tracing`; a default subscriber honouring `AWS_LAMBDA_LOG_FORMAT`,
//!   `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG` is installed unless the program set its own, and
//!   every line logged during an invocation carries its request id.

mod concurrency;
mod config;
mod context;
mod handler;
mod invocation_loop;
mod logging;
mod response;
mod xray;

use std::future::Future;
use std::sync::Arc;

use invocation_loop::InvocationLoop;
use ironlambda_api_client::panic::{CatchUnwind, panic_message};
use ironlambda_api_client::{Client, Endpoint, RuntimeApi};

pub use config::{Config, ConfigError};
pub use context::{ClientApplication, ClientContext, CognitoIdentity, Context};
pub use handler::{Handler, HandlerFn, IntoHandler, LocalHandler, SendHandlerFn, handler_fn};
pub use invocation_loop::{INVALID_EVENT_ERROR_TYPE, PANIC_ERROR_TYPE, SERIALIZATION_ERROR_TYPE};
pub use ironlambda_api_client::Error;
pub use logging::{LogFormat, init_default_subscriber};
pub use response::{
    CHANNEL_CHUNKS, HTTP_INTEGRATION_CONTENT_TYPE, HttpIntegration, IntoResponse, Raw, Response,
    ResponseBuffer, StreamClosed, StreamSender, Streaming,
};
pub use xray::trace_id;

/// Cleanup hooks that run when Lambda shuts the environment down (SIGTERM); install it
/// before [`run`]. See [`ironlambda_extension::GracefulShutdown`].
#[cfg(feature = "graceful-shutdown")]
pub use ironlambda_extension::GracefulShutdown;

/// Runs `handler` for every invocation until the environment goes away, from your own
/// `#[tokio::main]`.
///
/// Takes a [`Handler`], or a [`handler_fn`] whose future is `Send`: on a multi-thread
/// runtime the loops run on tokio's worker threads (in parallel with
/// `AWS_LAMBDA_MAX_CONCURRENCY`). A handler that is not `Send` runs with [`start`] or
/// [`run_local`].
///
/// Returns only on a fatal error (the Runtime API is unreachable or refuses `/next`), or
/// when init fails; return that result from `main` so the process exits non-zero.
pub async fn run<H: IntoHandler>(handler: H) -> Result<(), Error> {
    run_with_init(|_config| async move { Ok::<_, Error>(handler) }).await
}

/// Builds the handler with `init` (given the function's [`Config`]) and then runs it as
/// [`run`] does.
///
/// An `Err` or a panic from `init` is reported to `/runtime/init/error` and returned.
///
/// ```no_run
/// use std::sync::Arc;
/// use ironlambda_runtime::{Config, Context, Error, handler_fn};
///
/// # async fn demo() -> Result<(), Error> {
/// ironlambda_runtime::run_with_init(|config: Arc<Config>| async move {
///     let table = std::env::var("TABLE")
///         .map_err(|_| Error::new("Config.Missing", "TABLE is not set"))?;
///     let function = config.function_name.clone();
///     Ok::<_, Error>(handler_fn(move |key: String, _ctx: Context| {
///         let answer = format!("{function} reads {key} from {table}");
///         async move { Ok::<_, Error>(answer) }
///     }))
/// })
/// .await
/// # }
/// ```
pub async fn run_with_init<H, F, Fut, IE>(init: F) -> Result<(), Error>
where
    H: IntoHandler,
    F: FnOnce(Arc<Config>) -> Fut,
    Fut: Future<Output = Result<H, IE>>,
    IE: Into<Error>,
{
    let (invocation_loop, endpoint) = prepare(|config| {
        let init = init(config);
        async move { init.await.map(IntoHandler::into_handler) }
    })
    .await?;
    let serve = async move { concurrency::serve(invocation_loop, &endpoint).await };
    // On a multi-thread runtime (`#[tokio::main]`), `main`'s future runs on the main
    // thread while the worker threads drive the sockets, so every answer from Lambda
    // would cost a wake-up across threads. Spawned, the loop runs on a worker, which polls
    // the socket itself when it parks and resumes the loop where it woke.
    if tokio::runtime::Handle::current().runtime_flavor()
        != tokio::runtime::RuntimeFlavor::MultiThread
    {
        return serve.await;
    }
    match tokio::spawn(serve).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::new("Runtime.Cancelled", e.to_string())),
    }
}

/// Like [`run`], for any [`LocalHandler`], `Send` or not: every invocation runs in the
/// calling task, on its thread (several interleaved with `AWS_LAMBDA_MAX_CONCURRENCY`),
/// whatever the runtime's flavour.
pub async fn run_local<H: LocalHandler>(handler: H) -> Result<(), Error> {
    run_local_with_init(|_config| async move { Ok::<_, Error>(handler) }).await
}

/// Builds the handler with `init`, as [`run_with_init`] does, and runs it as
/// [`run_local`] does.
pub async fn run_local_with_init<H, F, Fut, IE>(init: F) -> Result<(), Error>
where
    H: LocalHandler,
    F: FnOnce(Arc<Config>) -> Fut,
    Fut: Future<Output = Result<H, IE>>,
    IE: Into<Error>,
{
    let (invocation_loop, endpoint) = prepare(init).await?;
    concurrency::serve_local(invocation_loop, &endpoint).await
}

/// Everything before the first `/next`: logging, the endpoint, the configuration and the
/// handler. A failure is posted to `/runtime/init/error` (when the endpoint is known) and
/// returned.
async fn prepare<H, F, Fut, IE>(init: F) -> Result<(InvocationLoop<H>, Endpoint), Error>
where
    H: LocalHandler,
    F: FnOnce(Arc<Config>) -> Fut,
    Fut: Future<Output = Result<H, IE>>,
    IE: Into<Error>,
{
    init_default_subscriber();
    let endpoint = Endpoint::from_env().map_err(|e| {
        tracing::error!("{e}");
        Error::from(e).with_error_type("Runtime.InvalidEndpoint")
    })?;
    let api = RuntimeApi::new(endpoint.clone());
    let mut client = Client::new(&endpoint);
    let config = match Config::from_env() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            let e = Error::from(e).with_error_type("Runtime.InvalidConfig");
            return Err(invocation_loop::report_init_error(&mut client, &api, e).await);
        }
    };
    let handler = match CatchUnwind(Box::pin(init(config.clone()))).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            return Err(invocation_loop::report_init_error(&mut client, &api, e.into()).await);
        }
        Err(payload) => {
            let e = Error::new(PANIC_ERROR_TYPE, panic_message(&*payload));
            return Err(invocation_loop::report_init_error(&mut client, &api, e).await);
        }
    };
    let next_request = ironlambda_api_client::EncodedRequest::new(&api.next());
    let invocation_loop = InvocationLoop {
        client,
        api,
        handler: Arc::new(handler),
        config,
        trace_env: Some(xray::TraceEnv::from_env()),
        response_buf: response::ResponseBuffer::new(),
        next_request,
    };
    Ok((invocation_loop, endpoint))
}

/// Runs the loop from synchronous code, for any [`LocalHandler`] (`Send` or not): builds
/// a current-thread tokio runtime and blocks on [`run_local`]. A single-threaded process
/// is also what lets `_X_AMZN_TRACE_ID` follow each invocation.
pub fn start<H: LocalHandler>(handler: H) -> Result<(), Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::from)?
        // Boxed: the loop's future is several KiB, and `block_on` would otherwise move it
        // down the stack frame by frame, each new stack page a page fault before the first
        // `/next` (cold start).
        .block_on(Box::pin(run_local(handler)))
}
