//! [`Error`]: what a handler (function or extension) returns when it fails, and how it is
//! reported to Lambda. Re-exported as `ironlambda_runtime::Error` and
//! `ironlambda_extension::Error`.

use std::borrow::Cow;
use std::fmt;

use crate::wire::ErrorRequest;

/// A failed invocation or init, as Lambda will report it: an `errorType` and an `errorMessage`.
///
/// Any `std::error::Error` converts with `?`, and its `errorType` is the short name of its
/// concrete type (`ParseIntError`, not `core::num::error::ParseIntError`):
///
/// ```
/// use ironlambda_api_client::Error;
/// fn parse(s: &str) -> Result<u32, Error> { Ok(s.parse::<u32>()?) }
/// let e = parse("x").unwrap_err();
/// assert_eq!(e.error_type(), "ParseIntError");
/// assert_eq!(e.message(), "invalid digit found in string");
/// let e = e.with_error_type("Function.BadInput");
/// assert_eq!(e.error_type(), "Function.BadInput");
/// ```
///
/// Like `anyhow::Error`, it does not implement `std::error::Error` itself (that would clash
/// with the blanket conversion); [`Error::source`] gives the original error back.
pub struct Error {
    error_type: Cow<'static, str>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error with an explicit type and message.
    pub fn new(error_type: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Error {
            error_type: error_type.into(),
            message: message.into(),
            source: None,
        }
    }

    /// An error from a boxed `dyn Error`; its type name is not known, so the type is `Error`
    /// unless set with [`Error::with_error_type`].
    pub fn from_boxed(source: Box<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        Error {
            error_type: Cow::Borrowed("Error"),
            message: source.to_string(),
            source: Some(source),
        }
    }

    /// Replaces the reported `errorType`.
    pub fn with_error_type(mut self, error_type: impl Into<Cow<'static, str>>) -> Self {
        self.error_type = error_type.into();
        self
    }

    /// The reported `errorType`.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The reported `errorMessage`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error this one was converted from, if any.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// The body Lambda receives on `/error` and `/init/error`.
    pub fn to_error_request(&self) -> ErrorRequest {
        ErrorRequest {
            error_message: self.message.clone(),
            error_type: self.error_type.to_string(),
            stack_trace: Vec::new(),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        Error {
            error_type: Cow::Borrowed(short_type_name(std::any::type_name::<E>())),
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `core::num::error::ParseIntError` → `ParseIntError`; `a::Wrapper<b::Inner>` → `Wrapper`.
fn short_type_name(full: &'static str) -> &'static str {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Custom;
    impl fmt::Display for Custom {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("custom failure")
        }
    }
    impl std::error::Error for Custom {}

    #[test]
    fn type_names_are_short() {
        let cases = [
            ("core::num::error::ParseIntError", "ParseIntError"),
            ("ParseIntError", "ParseIntError"),
            ("my::Wrapper<other::Inner>", "Wrapper"),
            ("std::io::error::Error", "Error"),
        ];
        for (full, short) in cases {
            assert_eq!(short_type_name(full), short);
        }
    }

    #[test]
    fn conversions_keep_the_concrete_type() {
        let e: Error = Custom.into();
        assert_eq!(e.error_type(), "Custom");
        assert_eq!(e.to_error_request().error_message, "custom failure");
        assert!(e.source().is_some());
        let e = Error::from_boxed(Box::new(Custom)).with_error_type("Function.Custom");
        assert_eq!(format!("{e:?}"), "Function.Custom: custom failure");
        let json = serde_json::to_string(&Error::new("T", "m").to_error_request()).unwrap();
        assert_eq!(
            json,
            r#"{"errorMessage":"m","errorType":"T","stackTrace":[]}"#
        );
    }
}
