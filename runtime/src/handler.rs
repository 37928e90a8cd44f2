//! What a function author implements: the [`Handler`] trait, or a plain async fn via
//! [`handler_fn`].

use std::future::Future;
use std::marker::PhantomData;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::response::IntoResponse;
use ironlambda_api_client::Error;

/// A Lambda function. Implement it for a struct when the handler holds state built once at
/// init (SDK clients, pools); use [`handler_fn`] for a plain async fn.
///
/// ```
/// use ironlambda_runtime::{Context, Error, Handler};
/// struct Greeter { greeting: String }
///
/// #[async_trait::async_trait]
/// impl Handler for Greeter {
///     type Event = String;
///     type Output = String;
///     type Error = Error;
///     async fn call(&self, name: String, _ctx: Context) -> Result<String, Error> {
///         Ok(format!("{}, {name}!", self.greeting))
///     }
/// }
/// ```
#[async_trait]
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
    async fn call(&self, event: Self::Event, ctx: Context) -> Result<Self::Output, Self::Error>;
}

/// A [`Handler`] made from an async fn or closure; see [`handler_fn`].
pub struct HandlerFn<F, E> {
    f: F,
    _event: PhantomData<fn(E)>,
}

/// Turns `async fn(E, Context) -> Result<O, Er>` into a [`Handler`]. `O` is any
/// [`IntoResponse`]; `Er` any error type [`Handler::Error`] lists.
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

#[async_trait]
impl<F, E, O, Er, Fut> Handler for HandlerFn<F, E>
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

    async fn call(&self, event: E, ctx: Context) -> Result<O, Er> {
        (self.f)(event, ctx).await
    }
}
