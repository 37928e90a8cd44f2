//! What a function author implements: a plain async fn via [`handler_fn`], or the
//! [`Handler`] trait (or [`LocalHandler`], for state that is not `Send`) on a struct.
//!
//! Two traits, because where a handler may run decides what it must be:
//! - [`LocalHandler`] asks nothing of threads. [`start`](crate::start) and
//!   [`run_local`](crate::run_local) take one: every invocation runs on the thread that
//!   started the loop (several interleaved with `AWS_LAMBDA_MAX_CONCURRENCY`), so an `Rc`,
//!   a `RefCell` or a `!Send` future is fine there.
//! - [`Handler`] is `Send + Sync` with a `Send` future. [`run`](crate::run) takes one
//!   (through [`IntoHandler`]), because on a multi-thread runtime it runs the loops on
//!   tokio's worker threads.
//!
//! Every `Handler` is a `LocalHandler`. A [`handler_fn`] is a `LocalHandler` whatever its
//! future, and [`run`](crate::run) takes it when its future is `Send`. So a handler that is
//! not `Send` is a compile error only on the multi-thread path (`run`), with a message that
//! points to `start` and `run_local`.
//!
//! The traits use `async fn` in traits (Rust 1.75): an `impl` writes a plain `async fn
//! call`, and the loop calls it without boxing its future.

use std::future::Future;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::response::IntoResponse;
use ironlambda_api_client::Error;

/// A Lambda function whose state and future are `Send`: what [`run`](crate::run) takes.
/// Implement it for a struct when the handler holds state built once at init (SDK
/// clients, pools); use [`handler_fn`] for a plain async fn.
///
/// ```
/// use ironlambda_runtime::{Context, Error, Handler};
/// struct Greeter { greeting: String }
///
/// impl Handler for Greeter {
///     type Event = String;
///     type Output = String;
///     type Error = Error;
///     async fn call(&self, name: String, _ctx: Context) -> Result<String, Error> {
///         Ok(format!("{}, {name}!", self.greeting))
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Handler`",
    note = "a `Handler` is `Send + Sync` with a `Send` future; a handler that is not `Send` implements `LocalHandler` and runs with `ironlambda_runtime::start` or `run_local`"
)]
pub trait Handler: Send + Sync + 'static {
    /// The event type, read from the invocation's JSON payload.
    type Event: DeserializeOwned + Send;
    /// The response: anything `Serialize` (sent as JSON), [`Raw`](crate::Raw) bytes,
    /// a [`Streaming`](crate::Streaming) response, … (see [`IntoResponse`]).
    type Output: IntoResponse;
    /// The error type: [`Error`], any `std::error::Error + Send + Sync + 'static`,
    /// `Box<dyn std::error::Error + Send + Sync>`, `String`, `&'static str`,
    /// `anyhow::Error`, `eyre::Report`, or your own type with `From<YourType> for Error`.
    type Error: Into<Error> + Send;

    /// Handles one invocation.
    fn call(
        &self,
        event: Self::Event,
        ctx: Context,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

/// A Lambda function with no thread requirements: what [`start`](crate::start) and
/// [`run_local`](crate::run_local) take. Every [`Handler`] is one; implement this one
/// instead when the handler's state or future is not `Send` (an `Rc`, a `RefCell`, a
/// guard held across an await).
///
/// ```
/// use std::cell::Cell;
/// use ironlambda_runtime::{Context, Error, LocalHandler};
/// struct Counter { seen: Cell<u64> }
///
/// impl LocalHandler for Counter {
///     type Event = serde_json::Value;
///     type Output = u64;
///     type Error = Error;
///     async fn call(&self, _event: serde_json::Value, _ctx: Context) -> Result<u64, Error> {
///         self.seen.set(self.seen.get() + 1);
///         Ok(self.seen.get())
///     }
/// }
/// # fn main_() -> Result<(), Error> {
/// ironlambda_runtime::start(Counter { seen: Cell::new(0) })
/// # }
/// ```
///
/// A [`handler_fn`] whose future is not `Send` is served the same way:
///
/// ```no_run
/// use std::rc::Rc;
/// use ironlambda_runtime::{Context, Error, handler_fn};
///
/// async fn holds_an_rc(n: u64, _ctx: Context) -> Result<u64, Error> {
///     let shared = Rc::new(n);
///     tokio::task::yield_now().await; // the `Rc` lives across this await
///     Ok(*shared)
/// }
///
/// fn main() -> Result<(), Error> {
///     ironlambda_runtime::start(handler_fn(holds_an_rc))
/// }
/// ```
///
/// and [`run`](crate::run), which may use worker threads, refuses it at compile time:
///
/// ```compile_fail,E0277
/// # use std::rc::Rc;
/// # use ironlambda_runtime::{Context, Error, handler_fn};
/// # async fn holds_an_rc(n: u64, _ctx: Context) -> Result<u64, Error> {
/// #     let shared = Rc::new(n);
/// #     tokio::task::yield_now().await;
/// #     Ok(*shared)
/// # }
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Error> {
///     ironlambda_runtime::run(handler_fn(holds_an_rc)).await
/// }
/// ```
pub trait LocalHandler: 'static {
    /// The event type, read from the invocation's JSON payload.
    type Event: DeserializeOwned;
    /// The response (see [`IntoResponse`]).
    type Output: IntoResponse;
    /// The error type; the forms [`Handler::Error`] lists.
    type Error: Into<Error>;

    /// Handles one invocation.
    fn call(
        &self,
        event: Self::Event,
        ctx: Context,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>>;
}

impl<H: Handler> LocalHandler for H {
    type Event = H::Event;
    type Output = H::Output;
    type Error = H::Error;

    fn call(
        &self,
        event: Self::Event,
        ctx: Context,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> {
        Handler::call(self, event, ctx)
    }
}

/// What [`run`](crate::run) takes: a [`Handler`], or a [`handler_fn`] whose future is
/// `Send`.
#[diagnostic::on_unimplemented(
    message = "`run` needs a `Send` handler, and `{Self}` is not one",
    label = "not `Send + Sync`, or its future is not `Send`",
    note = "`run` may run the handler on tokio's worker threads; a handler that is not `Send` runs with `ironlambda_runtime::start(handler)` from a sync `main`, or `run_local(handler).await`"
)]
pub trait IntoHandler {
    /// The handler `run` serves.
    type Handler: Handler;
    /// Converts; nothing is built or called.
    fn into_handler(self) -> Self::Handler;
}

impl<H: Handler> IntoHandler for H {
    type Handler = H;
    fn into_handler(self) -> H {
        self
    }
}

/// A [`LocalHandler`] made from an async fn or closure; see [`handler_fn`].
pub struct HandlerFn<F, E> {
    f: F,
    _event: PhantomData<fn(E)>,
}

/// Turns `async fn(E, Context) -> Result<O, Er>` into a handler. `O` is any
/// [`IntoResponse`]; `Er` any error type [`Handler::Error`] lists. [`start`](crate::start)
/// and [`run_local`](crate::run_local) take any such fn; [`run`](crate::run) takes it
/// when the fn and its future are `Send`.
///
/// ```
/// use ironlambda_runtime::{Context, Error, handler_fn};
/// async fn double(n: u64, _ctx: Context) -> Result<u64, Error> { Ok(n * 2) }
/// # async fn main_() -> Result<(), Error> {
/// ironlambda_runtime::run(handler_fn(double)).await
/// # }
/// ```
pub fn handler_fn<F, E>(f: F) -> HandlerFn<F, E> {
    HandlerFn {
        f,
        _event: PhantomData,
    }
}

impl<F, E, O, Er, Fut> LocalHandler for HandlerFn<F, E>
where
    F: Fn(E, Context) -> Fut + 'static,
    Fut: Future<Output = Result<O, Er>>,
    E: DeserializeOwned + 'static,
    O: IntoResponse,
    Er: Into<Error>,
{
    type Event = E;
    type Output = O;
    type Error = Er;

    fn call(&self, event: E, ctx: Context) -> impl Future<Output = Result<O, Er>> {
        (self.f)(event, ctx)
    }
}

/// A [`handler_fn`] whose fn and future are `Send`, as [`run`](crate::run) serves it
/// (what [`IntoHandler`] makes of it).
pub struct SendHandlerFn<F, E>(HandlerFn<F, E>);

impl<F, E, O, Er, Fut> Handler for SendHandlerFn<F, E>
where
    F: Fn(E, Context) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, Er>> + Send,
    E: DeserializeOwned + Send + 'static,
    O: IntoResponse,
    Er: Into<Error> + Send,
{
    type Event = E;
    type Output = O;
    type Error = Er;

    fn call(&self, event: E, ctx: Context) -> impl Future<Output = Result<O, Er>> + Send {
        (self.0.f)(event, ctx)
    }
}

// `run` takes a fn exactly when its `Send` form is a `Handler`: one set of bounds.
impl<F, E> IntoHandler for HandlerFn<F, E>
where
    SendHandlerFn<F, E>: Handler,
{
    type Handler = SendHandlerFn<F, E>;
    fn into_handler(self) -> SendHandlerFn<F, E> {
        SendHandlerFn(self)
    }
}
