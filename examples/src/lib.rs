//! Example Lambda functions: each file in `src/bin` is one deployable `bootstrap`.
//!
//! - `hello`: the smallest useful function (`{"name":"Ada"}` → `{"message":"Hello, Ada!"}`).
//! - `order`: typed errors: a standard error through `?`, a custom error type, and an
//!   overridden `errorType`.
