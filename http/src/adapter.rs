//! [`Adapter`]: an HTTP service as a Lambda [`Handler`]. Each invocation's event becomes
//! an `http::Request`, the service answers it, and the answer goes back in the trigger's
//! shape (or streamed, with [`Adapter::streaming`]).
//!
//! A service is either a plain async fn (`Fn(Request) -> Future<Output = Result<impl
//! IntoResponse, E>>`) or, with the `tower` feature, any cloneable `tower::Service` (an
//! axum `Router`). The two are told apart by a marker type ([`FromFn`], [`FromService`])
//! that the compiler infers, so `run(handler)` and `run(router)` both just work.

use std::future::Future;
use std::marker::PhantomData;

use http::HeaderMap;
use ironlambda_runtime::{Context, Error, Handler};

use crate::body::Body;
use crate::event::HttpEvent;
use crate::response::{self, Encoding, HttpOutput, IntoResponse, Rendered, ResponseBody};

/// The environment variable that makes [`Adapter::strip_stage`] the default, as
/// `lambda_http` users set it.
pub const IGNORE_STAGE_ENV: &str = "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH";

/// Marks a service that is an async fn.
#[derive(Debug)]
pub enum FromFn {}

/// Marks a service that is a `tower::Service`.
#[derive(Debug)]
pub enum FromService {}

/// An HTTP service as a Lambda handler, with its options.
///
/// ```no_run
/// use ironlambda_http::{Adapter, Request};
/// async fn hello(_req: Request) -> Result<&'static str, ironlambda_runtime::Error> {
///     Ok("Hello!")
/// }
/// # async fn demo() -> Result<(), ironlambda_runtime::Error> {
/// Adapter::new(hello).strip_stage(true).run().await
/// # }
/// ```
pub struct Adapter<S, M> {
    service: S,
    strip_stage: bool,
    streaming: bool,
    encoding: Encoding,
    _marker: PhantomData<fn() -> M>,
}

impl<S, M> std::fmt::Debug for Adapter<S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("strip_stage", &self.strip_stage)
            .field("streaming", &self.streaming)
            .finish_non_exhaustive()
    }
}

impl<S, M> Adapter<S, M> {
    /// `service` with the defaults: buffered responses, the path as the client sent it
    /// (unless `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true`), the default text/binary rule.
    pub fn new(service: S) -> Self {
        let strip_stage = std::env::var(IGNORE_STAGE_ENV).is_ok_and(|v| v == "true");
        Adapter {
            service,
            strip_stage,
            streaming: false,
            encoding: Encoding {
                binary_when: response::is_binary,
            },
            _marker: PhantomData,
        }
    }

    /// Routes on the path below the API Gateway stage (`/hello` rather than
    /// `/Prod/hello`). [`RequestExt::raw_http_path`](crate::RequestExt::raw_http_path)
    /// still gives the path the client sent.
    pub fn strip_stage(mut self, strip: bool) -> Self {
        self.strip_stage = strip;
        self
    }

    /// Streams every response through the HTTP-integration prelude, for a Function URL in
    /// `RESPONSE_STREAM` mode or an API Gateway streaming integration. (A function in the
    /// default `BUFFERED` mode must not stream: its trigger would not understand.)
    pub fn streaming(mut self) -> Self {
        self.streaming = true;
        self
    }

    /// Replaces the rule that says whether a response body goes base64, given the
    /// response's headers (the default is [`is_binary`](crate::is_binary)). A body that is
    /// not UTF-8 goes base64 whatever the rule says.
    pub fn binary_when(mut self, rule: fn(&HeaderMap) -> bool) -> Self {
        self.encoding.binary_when = rule;
        self
    }

    /// Runs the function until the environment goes away
    /// ([`ironlambda_runtime::run`]).
    pub async fn run(self) -> Result<(), Error>
    where
        Self: Handler,
    {
        ironlambda_runtime::run(self).await
    }

    /// One invocation: `event` as a request (the invocation's context attached), the
    /// service's answer from `serve`, and that answer in the shape the trigger expects, or
    /// streamed.
    async fn answer<Fut>(
        &self,
        event: HttpEvent,
        ctx: Context,
        serve: impl FnOnce(http::Request<Body>) -> Fut,
    ) -> Result<HttpOutput, Error>
    where
        Fut: Future<Output = Result<http::Response<ResponseBody>, Error>>,
    {
        let trigger = event.trigger();
        let mut request = event.into_request(self.strip_stage)?;
        request.extensions_mut().insert(ctx);
        let response = serve(request).await?;
        if self.streaming {
            return Ok(HttpOutput::Streaming(response::streamed(response)));
        }
        Rendered::new(trigger, response, self.encoding)
            .await
            .map(HttpOutput::Buffered)
    }
}

impl<F, Fut, R, E> Handler for Adapter<F, FromFn>
where
    F: Fn(http::Request<Body>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, E>> + Send,
    R: IntoResponse,
    E: Into<Error> + Send,
{
    type Event = HttpEvent;
    type Output = HttpOutput;
    type Error = Error;

    async fn call(&self, event: HttpEvent, ctx: Context) -> Result<HttpOutput, Error> {
        self.answer(event, ctx, |request| async {
            Ok((self.service)(request)
                .await
                .map_err(Into::into)?
                .into_response())
        })
        .await
    }
}

#[cfg(feature = "tower")]
impl<S, B> Handler for Adapter<S, FromService>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
    S::Error: Into<response::BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<response::BoxError>,
{
    type Event = HttpEvent;
    type Output = HttpOutput;
    type Error = Error;

    async fn call(&self, event: HttpEvent, ctx: Context) -> Result<HttpOutput, Error> {
        // A clone per invocation: `call` takes `&mut self`, and concurrent invocations
        // share the handler. Routers and most services clone an `Arc`.
        let mut service = self.service.clone();
        self.answer(event, ctx, |request| async move {
            std::future::poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(|e| Error::from_boxed(e.into()))?;
            let response = service
                .call(request)
                .await
                .map_err(|e| Error::from_boxed(e.into()))?;
            Ok(response.into_response())
        })
        .await
    }
}
