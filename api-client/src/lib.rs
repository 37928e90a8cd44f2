//! The AWS Lambda control-plane wire protocol, written once.
//!
//! Everything about the wire lives here, shared by the runtime, the extension library and
//! the emulator: parsing `AWS_LAMBDA_RUNTIME_API` ([`Endpoint`]), the Runtime API paths and
//! requests ([`RuntimeApi`], [`RuntimeRoute`]), header names ([`headers`]), bodies and limits
//! ([`wire`]), HTTP-integration responses ([`http_integration`]), request-id validation, a keep-alive HTTP/1.1 [`Client`] that can pipeline
//! requests, and typed [`ApiError`]s; the Extensions API ([`ExtensionApi`], [`ExtensionRoute`],
//! [`ExtensionEvent`]) and the Telemetry/Logs subscription and event types ([`telemetry`]).
//! [`Error`] is the error type handlers return, shared by the runtime and extension crates.
//!
//! ```no_run
//! use ironlambda_api_client::{Client, Endpoint, NextHeaders, RuntimeApi};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let endpoint = Endpoint::from_env()?;
//! let api = RuntimeApi::new(endpoint.clone());
//! let mut client = Client::new(&endpoint);
//! let next = client.send(api.next()).await?;
//! let headers = NextHeaders::from_response(&next);
//! client.send(api.response(&headers.request_id, next.body, "application/json")?).await?;
//! # Ok(()) }
//! ```

mod client;
mod diagnostic;
mod endpoint;
mod error;
mod extension_api;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod headers;
mod http1;
pub mod http_integration;
pub mod panic;
#[cfg(test)]
mod properties;
mod request_id;
mod runtime_api;
pub mod telemetry;
pub mod time;
pub mod wire;

pub use client::{ApiResponse, Client, EncodedRequest, POLL_ATTEMPTS, POLL_BACKOFF};
pub use diagnostic::Error;
pub use endpoint::{Endpoint, EndpointError, RUNTIME_API_ENV};
pub use error::{ApiError, TransportError};
pub use extension_api::{
    EVENT_NEXT_PATH, EXTENSION_EXIT_ERROR_PATH, EXTENSION_INIT_ERROR_PATH, EventType, ExtensionApi,
    ExtensionEvent, ExtensionId, ExtensionRoute, InvalidHeaderValue, InvokeEvent, LOGS_PATH,
    REGISTER_PATH, RegisterRequest, RegisterResponse, ShutdownEvent, ShutdownReason,
    TELEMETRY_PATH, Tracing, headers as extension_headers,
};
pub use request_id::{InvalidRequestId, MAX_REQUEST_ID_LEN, validate_request_id};
pub use runtime_api::{
    Body, INIT_ERROR_PATH, MAX_ERROR_TYPE_LEN, NEXT_PATH, NextHeaders, RuntimeApi, RuntimeRoute,
    VERSION_PREFIX, read_stream_error_trailers, sanitize_error_type, stream_error_trailers,
};
