//! HTTP functions on AWS Lambda: an `http::Request` in and a response out, whichever
//! trigger sends the request: API Gateway REST (payload 1.0), HTTP API (2.0) and
//! WebSocket APIs, Application Load Balancers (with or without multi-value headers), and
//! Function URLs (buffered or streamed).
//!
//! A plain async fn:
//!
//! ```no_run
//! use ironlambda_http::{Error, Request, RequestExt};
//!
//! async fn hello(req: Request) -> Result<String, Error> {
//!     let name = req.query_string_parameters().get("name").unwrap_or("world").to_owned();
//!     Ok(format!("Hello, {name}!"))
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Error> {
//!     ironlambda_http::run(hello).await
//! }
//! ```
//!
//! Any tower `Service` (feature `tower`, on by default) runs unchanged, an axum `Router`
//! for one: `ironlambda_http::run(router).await`.
//!
//! The crate's map:
//! - `event`: the event of any trigger, recognised from its shape, and the request it
//!   becomes ([`HttpEvent`]): query strings, repeated headers, cookies and base64 bodies
//!   by each trigger's own rules.
//! - `context`: the trigger's request context, typed ([`RequestContext`]), and [`Trigger`].
//! - `ext`: [`RequestExt`], what a request carries beyond HTTP (the Lambda [`Context`],
//!   path parameters, stage variables, the raw path), and [`Params`].
//! - `body`: [`Body`], the request body.
//! - `response`: [`IntoResponse`] for plain fn services, and the response shape each
//!   trigger expects ([`is_binary`] decides text or base64).
//! - `adapter`: [`Adapter`], a service as a Lambda handler, and its options.

mod adapter;
mod body;
mod context;
mod event;
mod ext;
mod response;

pub use adapter::{Adapter, FromFn, FromService, IGNORE_STAGE_ENV};
pub use body::Body;
pub use context::{
    AlbContext, ApiGatewayHttpContext, ApiGatewayRestContext, HttpDescription, Identity,
    RequestContext, Trigger, WebSocketContext,
};
pub use event::HttpEvent;
pub use ext::{Params, RequestExt};
pub use ironlambda_runtime::{Context, Error};
pub use response::{BoxError, HttpOutput, IntoResponse, Json, Rendered, ResponseBody, is_binary};

/// The request a service gets.
pub type Request = http::Request<Body>;

/// Runs `service` for every invocation, answering each in its trigger's response shape.
///
/// `service` is an async fn `Fn(Request) -> Result<impl IntoResponse, E>` (`E` any error
/// [`ironlambda_runtime::Handler::Error`] accepts) or any cloneable
/// `tower::Service<Request>` whose response is an `http::Response` (an axum `Router`).
/// Use [`Adapter`] for the options.
pub async fn run<S, M>(service: S) -> Result<(), Error>
where
    Adapter<S, M>: ironlambda_runtime::Handler,
{
    Adapter::new(service).run().await
}

/// Like [`run`], streaming every response (a Function URL in `RESPONSE_STREAM` mode): the
/// status and headers go first, then the body as the service produces it.
pub async fn run_streaming<S, M>(service: S) -> Result<(), Error>
where
    Adapter<S, M>: ironlambda_runtime::Handler,
{
    Adapter::new(service).streaming().run().await
}
