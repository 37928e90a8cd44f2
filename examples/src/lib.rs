//! Example Lambda functions: each file in `src/bin` is one deployable `bootstrap`.
//!
//! - `hello`: the smallest useful function (`{"name":"Ada"}` → `{"message":"Hello, Ada!"}`).
//! - `order`: typed errors: a standard error through `?`, a custom error type, and an
//!   overridden `errorType`.
//! - `telemetry-summary`: an external extension (layer path `extensions/telemetry-summary`)
//!   printing INVOKE, a Telemetry API summary per invocation, and SHUTDOWN.
//! - `internal-extension`: a function with an internal extension beside its runtime loop.
//! - `graceful`: a function whose graceful-shutdown hook flushes its buffer on SIGTERM.
