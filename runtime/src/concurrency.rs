//! Lambda Managed Instances: one environment, many invocations at once (protocol.md §8).
//!
//! With `AWS_LAMBDA_MAX_CONCURRENCY=N` the runtime runs N copies of the invocation loop on
//! one shared handler. Each has its own keep-alive connection, so each still sends its
//! answer and its next `/next` in one write; Lambda answers each connection in order and
//! the loops in any order, and a request id only ever travels on the connection that
//! received it.
//!
//! The loops are tokio tasks: on a current-thread runtime they interleave at their awaits
//! (async concurrency), on a multi-thread runtime they also run in parallel. [`Handler`]
//! already requires `Send + Sync + 'static` and a `Send` future, so neither flavour asks
//! more of the handler.
//!
//! `_X_AMZN_TRACE_ID` is left alone: one process variable cannot hold N invocations'
//! traces. Each invocation's trace is in [`Context::xray_trace_id`](crate::Context) and in
//! [`trace_id`](crate::trace_id).
//!
//! The first loop to fail (the Runtime API refused `/next`, or stayed unreachable) ends
//! them all: the environment is gone, and the process exits non-zero once. A failing or
//! panicking invocation is only that invocation's business, as with one loop.

use ironlambda_api_client::{Client, Endpoint, Error};
use tokio::task::JoinSet;

use crate::handler::Handler;
use crate::invocation_loop::InvocationLoop;
use crate::response::ResponseBuffer;

/// Runs `first` and `loops - 1` more loops like it, each on a connection of its own, until
/// one of them fails; returns that failure.
pub(crate) async fn serve<H: Handler>(
    first: InvocationLoop<H>,
    endpoint: &Endpoint,
    loops: usize,
) -> Result<(), Error> {
    tracing::debug!(
        "AWS_LAMBDA_MAX_CONCURRENCY={loops}: {loops} invocation loops; _X_AMZN_TRACE_ID is not set (read Context::xray_trace_id or ironlambda_runtime::trace_id())"
    );
    let mut running = JoinSet::new();
    for _ in 1..loops {
        running.spawn(
            InvocationLoop {
                client: Client::new(endpoint),
                api: first.api.clone(),
                handler: first.handler.clone(),
                config: first.config.clone(),
                trace_env: None,
                response_buf: ResponseBuffer::new(),
                next_request: first.next_request.clone(),
            }
            .serve(),
        );
    }
    running.spawn(
        InvocationLoop {
            trace_env: None,
            ..first
        }
        .serve(),
    );
    let ended = running.join_next().await;
    // The rest stop at their next await; none of them can still reach Lambda anyway.
    running.abort_all();
    match ended {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(Error::new(
            "Runtime.LoopFailed",
            format!("an invocation loop ended abnormally: {e}"),
        )),
        None => Ok(()),
    }
}
