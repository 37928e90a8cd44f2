//! [`Error`]: what a handler (function or extension) returns when it fails, and how it is
//! reported to Lambda. Re-exported as `ironlambda_runtime::Error` and
//! `ironlambda_extension::Error`.
//!
//! One conversion covers every error type Rust programs already use: anything that
//! converts into `Box<dyn std::error::Error + Send + Sync>` converts into [`Error`]. That
//! is every std error, a boxed error, `String`, `&str`, `anyhow::Error` and
//! `eyre::Report`, so a handler may return any of them and `?` works inside it as in plain
//! Rust. (A blanket impl over `std::error::Error` could not sit beside impls for `Box`,
//! `String` or `anyhow::Error`: coherence forbids it.)

use std::any::type_name;
use std::borrow::Cow;
use std::fmt::{self, Write as _};

use crate::wire::ErrorRequest;

/// A boxed error, as it travels between conversions.
type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed invocation or init, as Lambda will report it: an `errorType` and an `errorMessage`.
///
/// Any error converts with `?` or `.into()`. The reported `errorType` is:
/// - the short name of the concrete type when it is known where the conversion happens
///   (`ParseIntError`, not `core::num::error::ParseIntError`);
/// - for type-erased errors (`Box<dyn Error>`, `anyhow::Error`, `eyre::Report`), the first
///   type name found along the cause chain in the errors' `Debug` output (derived `Debug`
///   prints it: `ParseIntError { .. }` gives `ParseIntError`), skipping context layers
///   named `Error`; `Error` when there is none;
/// - `Error` for a `String` or `&str`.
///
/// The `errorMessage` is the whole cause chain, `outer: inner: root`, without repeating a
/// cause whose text the message already holds.
///
/// ```
/// use ironlambda_api_client::Error;
/// fn parse(s: &str) -> Result<u32, Error> { Ok(s.parse::<u32>()?) }
/// let e = parse("x").unwrap_err();
/// assert_eq!(e.error_type(), "ParseIntError");
/// assert_eq!(e.message(), "invalid digit found in string");
/// let e = e.with_error_type("Function.BadInput");
/// assert_eq!(e.error_type(), "Function.BadInput");
///
/// fn check(n: u32) -> Result<u32, Error> {
///     if n == 0 { return Err("zero is not allowed".into()); }
///     Ok(n)
/// }
/// assert_eq!(check(0).unwrap_err().message(), "zero is not allowed");
/// ```
///
/// To give each variant of your own error enum its own `errorType`, implement
/// `From<YourError> for Error` (the enum must then not implement `std::error::Error`, or
/// the blanket conversion would already cover it):
///
/// ```
/// use ironlambda_api_client::Error;
/// #[derive(Debug)]
/// enum OrderError { UnknownItem(String), OutOfStock { left: u32 } }
/// impl From<OrderError> for Error {
///     fn from(e: OrderError) -> Error {
///         match e {
///             OrderError::UnknownItem(item) => Error::new("UnknownItem", format!("no {item}")),
///             OrderError::OutOfStock { left } => Error::new("OutOfStock", format!("{left} left")),
///         }
///     }
/// }
/// let e: Error = OrderError::OutOfStock { left: 2 }.into();
/// assert_eq!((e.error_type(), e.message()), ("OutOfStock", "2 left"));
/// ```
///
/// Like `anyhow::Error`, it does not implement `std::error::Error` itself (that would clash
/// with the blanket conversion); [`Error::source`] gives the original error back, and
/// [`Error::into_boxed`] turns it into a standard boxed error.
pub struct Error {
    error_type: Cow<'static, str>,
    message: String,
    source: Option<BoxError>,
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

    /// An error from a boxed `dyn Error`, named as type-erased errors are (see [`Error`]).
    pub fn from_boxed(source: BoxError) -> Self {
        Self::from_box(source, None)
    }

    /// `name` is the short concrete type name when the caller knew it.
    fn from_box(source: BoxError, name: Option<&'static str>) -> Self {
        // Our own error, boxed on its way here (e.g. through anyhow): take it back whole.
        let source = match source.downcast::<Reported>() {
            Ok(reported) => return reported.0,
            Err(other) => other,
        };
        let error_type = match name {
            Some(name) => Cow::Borrowed(name),
            None => erased_type_name(&*source),
        };
        Error {
            error_type,
            message: cause_chain(&*source),
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

    /// The reported `errorMessage`: the cause chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error this one was converted from, if any.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// This error as a standard boxed error (its `Display` is the message); converting
    /// that back into [`Error`] restores the `errorType`.
    pub fn into_boxed(self) -> BoxError {
        Box::new(Reported(self))
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

impl<E: Into<BoxError> + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        #[cfg_attr(not(any(feature = "anyhow", feature = "eyre")), allow(unused_mut))]
        let mut slot = Some(e);
        // An `Error` that went into anyhow or eyre comes back whole (their boxes hide it
        // from a plain downcast).
        #[cfg(feature = "anyhow")]
        if let Some(a) = take::<_, anyhow::Error>(&mut slot) {
            return a
                .downcast::<Reported>()
                .map_or_else(|a| Error::from_box(a.into(), None), |r| r.0);
        }
        #[cfg(feature = "eyre")]
        if let Some(r) = take::<_, eyre::Report>(&mut slot) {
            return r
                .downcast::<Reported>()
                .map_or_else(|r| Error::from_box(r.into(), None), |r| r.0);
        }
        let Some(e) = slot else {
            return Error::new("Error", "");
        };
        let full = type_name::<E>();
        let boxed: BoxError = e.into();
        let name = (!is_type_erased(full)).then(|| short_type_name(full));
        Error::from_box(boxed, name)
    }
}

/// Takes the value out of `slot` when `E` is `T`.
#[cfg(any(feature = "anyhow", feature = "eyre"))]
fn take<E: 'static, T: 'static>(slot: &mut Option<E>) -> Option<T> {
    (slot as &mut dyn std::any::Any)
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
}

/// [`Error`] inside a standard boxed error, so it can travel through `anyhow` or `eyre`
/// and come back with its `errorType`.
struct Reported(Error);

impl fmt::Debug for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Reported {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// `?` on an [`Error`] inside a function returning `anyhow::Result`.
#[cfg(feature = "anyhow")]
impl From<Error> for anyhow::Error {
    fn from(e: Error) -> Self {
        anyhow::Error::new(Reported(e))
    }
}

/// `?` on an [`Error`] inside a function returning `eyre::Result`.
#[cfg(feature = "eyre")]
impl From<Error> for eyre::Report {
    fn from(e: Error) -> Self {
        eyre::Report::from(Reported(e))
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

/// Types whose static name says nothing about the error inside.
fn is_type_erased(full: &str) -> bool {
    full.starts_with("alloc::boxed::Box<")
        || full.starts_with("std::boxed::Box<")
        || matches!(
            full,
            "anyhow::Error" | "eyre::Report" | "alloc::string::String" | "&str"
        )
        || full.starts_with("alloc::borrow::Cow<")
}

/// `core::num::error::ParseIntError` → `ParseIntError`; `a::Wrapper<b::Inner>` → `Wrapper`.
fn short_type_name(full: &'static str) -> &'static str {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// The name of a type-erased error: the first error along its cause chain whose `Debug`
/// output starts with a type name other than `Error` (derived `Debug` prints `Name { .. }`,
/// `Name(..)` or `Name`), so context layers (`anyhow`'s print as `Error { .. }`) give way
/// to the error they wrap; `Error` when none does.
fn erased_type_name(e: &(dyn std::error::Error + Send + Sync + 'static)) -> Cow<'static, str> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    // Bounded: a broken `source()` could loop forever.
    for _ in 0..32 {
        let Some(error) = next else { break };
        // io::Error's Debug output names its representation (`Os`, `Custom`), not a type.
        if !error.is::<std::io::Error>() {
            if let Some(name) = debug_type_name(error).filter(|n| n != "Error") {
                return Cow::Owned(name);
            }
        }
        next = error.source();
    }
    Cow::Borrowed("Error")
}

/// The type name `e`'s `Debug` output starts with, if it starts with one.
fn debug_type_name(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    // Only the start matters: stop formatting once a name could not be longer.
    let mut head = Bounded::<64>(String::new());
    let _ = write!(head, "{e:?}");
    let head = head.0;
    let name_len = head
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let looks_like_a_type = head.starts_with(|c: char| c.is_ascii_uppercase())
        && matches!(
            head.as_bytes().get(name_len),
            None | Some(b' ' | b'(' | b'{')
        )
        && name_len < 64;
    looks_like_a_type.then(|| head[..name_len].to_owned())
}

/// A `fmt::Write` that keeps at most `N` bytes and then refuses more.
struct Bounded<const N: usize>(String);

impl<const N: usize> fmt::Write for Bounded<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N.saturating_sub(self.0.len());
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.0.push_str(&s[..take]);
        if take < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// `outer: inner: root`. A cause whose text the message already holds is not repeated
/// (many errors print their source inside their own message).
fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut next = e.source();
    // Bounded: a broken `source()` could loop forever.
    for _ in 0..32 {
        let Some(cause) = next else { break };
        let text = cause.to_string();
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        next = cause.source();
    }
    message
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

    /// An error that wraps another without printing it.
    #[derive(Debug)]
    struct Outer(Custom);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("loading the order failed")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// An error that prints its source inside its own message.
    #[derive(Debug)]
    struct Verbose(Custom);
    impl fmt::Display for Verbose {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "reading failed: {}", self.0)
        }
    }
    impl std::error::Error for Verbose {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

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
    fn a_concrete_error_reports_its_type_name() {
        let e: Error = Custom.into();
        assert_eq!(e.error_type(), "Custom");
        assert_eq!(e.to_error_request().error_message, "custom failure");
        assert!(e.source().is_some());
        let json = serde_json::to_string(&Error::new("T", "m").to_error_request()).unwrap();
        assert_eq!(
            json,
            r#"{"errorMessage":"m","errorType":"T","stackTrace":[]}"#
        );
    }

    #[test]
    fn the_message_carries_the_cause_chain_once() {
        let e: Error = Outer(Custom).into();
        assert_eq!(e.error_type(), "Outer");
        assert_eq!(e.message(), "loading the order failed: custom failure");
        let e: Error = Verbose(Custom).into();
        assert_eq!(e.message(), "reading failed: custom failure");
    }

    #[test]
    fn a_boxed_error_is_named_from_its_debug_output() {
        let parse = "x".parse::<u32>().unwrap_err();
        let boxed: BoxError = Box::new(parse);
        let e: Error = boxed.into();
        assert_eq!(e.error_type(), "ParseIntError");
        let boxed: BoxError = Box::new(Outer(Custom));
        let e: Error = boxed.into();
        assert_eq!(
            (e.error_type(), e.message()),
            ("Outer", "loading the order failed: custom failure")
        );
        let boxed: BoxError = Box::new(std::io::Error::other("disk"));
        assert_eq!(Error::from(boxed).error_type(), "Error");
        let boxed: BoxError = "plain text".into();
        let e = Error::from(boxed);
        assert_eq!((e.error_type(), e.message()), ("Error", "plain text"));
    }

    #[test]
    fn text_becomes_an_error_named_error() {
        let e: Error = "no such order".into();
        assert_eq!((e.error_type(), e.message()), ("Error", "no such order"));
        let e: Error = String::from("bad input").into();
        assert_eq!((e.error_type(), e.message()), ("Error", "bad input"));
    }

    #[test]
    fn our_error_survives_a_trip_through_a_box() {
        let original = Error::new("Function.OutOfStock", "2 left");
        let back = Error::from(original.into_boxed());
        assert_eq!(
            (back.error_type(), back.message()),
            ("Function.OutOfStock", "2 left")
        );
    }

    #[test]
    fn debug_output_that_is_not_a_type_name_gives_error() {
        #[derive(Debug)]
        #[allow(non_camel_case_types)]
        struct lowercase;
        impl fmt::Display for lowercase {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("x")
            }
        }
        impl std::error::Error for lowercase {}
        let boxed: BoxError = Box::new(lowercase);
        assert_eq!(Error::from(boxed).error_type(), "Error");
    }
}
