//! Lambda Managed Instances: one environment, many invocations at once (protocol.md §8).
//!
//! With `AWS_LAMBDA_MAX_CONCURRENCY=N` the runtime runs N copies of the invocation loop on
//! one shared handler. Each has its own keep-alive connection, so each still sends its
//! answer and its next `/next` in one write; Lambda answers each connection in order and
//! the loops in any order, and a request id only ever travels on the connection that
//! received it.
//!
//! The loops are tokio tasks. From [`run`](crate::run) ([`serve`]) they are spawned: they
//! interleave on a current-thread runtime and run in parallel on a multi-thread one, which
//! is why `run` asks for a [`Handler`] (`Send + Sync`, `Send` future). From
//! [`run_local`](crate::run_local) and [`start`](crate::start) ([`serve_local`]) they are
//! local tasks on the calling thread, so a [`LocalHandler`] that is not `Send` runs too.
//!
//! `_X_AMZN_TRACE_ID` is left alone: one process variable cannot hold N invocations'
//! traces. Each invocation's trace is in [`Context::xray_trace_id`](crate::Context) and in
//! [`trace_id`](crate::trace_id).
//!
//! The first loop to fail (the Runtime API refused `/next`, or stayed unreachable) ends
//! them all: the environment is gone, and the process exits non-zero once. A failing or
//! panicking invocation is only that invocation's business, as with one loop.

use ironlambda_api_client::{Client, Endpoint, Error};
use tokio::task::{JoinSet, LocalSet};

use crate::handler::{Handler, LocalHandler};
use crate::invocation_loop::InvocationLoop;
use crate::response::ResponseBuffer;

/// How many loops the configuration asks for, when more than one: with one, the loop runs
/// in the calling task and no task is spawned.
fn several<H>(first: &InvocationLoop<H>) -> Option<usize> {
    match first.config.max_concurrency {
        0 | 1 => None,
        loops => Some(loops as usize),
    }
}

/// Serves invocations with `first`, and with `AWS_LAMBDA_MAX_CONCURRENCY` N > 1 with
/// N - 1 more loops like it as tasks, each on a connection of its own, until one of them
/// fails; returns that failure.
pub(crate) async fn serve<H: Handler>(
    first: InvocationLoop<H>,
    endpoint: &Endpoint,
) -> Result<(), Error> {
    let Some(loops) = several(&first) else {
        return first.serve().await;
    };
    let mut running = JoinSet::new();
    for invocation_loop in copies(first, endpoint, loops) {
        running.spawn(invocation_loop.serve());
    }
    first_failure(running).await
}

/// [`serve`] with local tasks on this thread: the handler need not be `Send`.
pub(crate) async fn serve_local<H: LocalHandler>(
    first: InvocationLoop<H>,
    endpoint: &Endpoint,
) -> Result<(), Error> {
    let Some(loops) = several(&first) else {
        return first.serve().await;
    };
    LocalSet::new()
        .run_until(async {
            let mut running = JoinSet::new();
            for invocation_loop in copies(first, endpoint, loops) {
                running.spawn_local(invocation_loop.serve());
            }
            first_failure(running).await
        })
        .await
}

/// `first` and `loops - 1` loops like it, each with a connection and a buffer of its own.
fn copies<H: LocalHandler>(
    first: InvocationLoop<H>,
    endpoint: &Endpoint,
    loops: usize,
) -> Vec<InvocationLoop<H>> {
    tracing::debug!(
        "AWS_LAMBDA_MAX_CONCURRENCY={loops}: {loops} invocation loops; _X_AMZN_TRACE_ID is not set (read Context::xray_trace_id or ironlambda_runtime::trace_id())"
    );
    let mut all: Vec<_> = (1..loops)
        .map(|_| InvocationLoop {
            client: Client::new(endpoint),
            api: first.api.clone(),
            handler: first.handler.clone(),
            config: first.config.clone(),
            trace_env: None,
            response_buf: ResponseBuffer::new(),
            next_request: first.next_request.clone(),
        })
        .collect();
    all.push(InvocationLoop {
        trace_env: None,
        ..first
    });
    all
}

/// Waits for the first loop to end and stops the others.
async fn first_failure(mut running: JoinSet<Result<(), Error>>) -> Result<(), Error> {
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
