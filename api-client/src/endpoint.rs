//! Parsing `AWS_LAMBDA_RUNTIME_API` into something a client can connect to.
//!
//! Production Lambda sets `127.0.0.1:9001`, but emulators hand out other shapes
//! (cargo-lambda sets `http://[::]:9000/.rt/<fn>`), so every shape in
//! protocol.md §0 is accepted: `host:port`, `[v6]:port`, `http://host:port` and
//! `http://host:port/prefix`.

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};

/// The environment variable that holds the Runtime API address.
pub const RUNTIME_API_ENV: &str = "AWS_LAMBDA_RUNTIME_API";

/// Where the Lambda control plane listens: a TCP authority plus an optional path prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    authority: String,
    prefix: String,
    host: HeaderValue,
}

/// Why an `AWS_LAMBDA_RUNTIME_API` value could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointError {
    value: String,
    reason: &'static str,
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {RUNTIME_API_ENV} value {:?}: {}",
            self.value, self.reason
        )
    }
}

impl std::error::Error for EndpointError {}

impl Endpoint {
    /// Parses any accepted shape of `AWS_LAMBDA_RUNTIME_API`.
    ///
    /// ```
    /// use ironlambda_api_client::Endpoint;
    /// let e = Endpoint::parse("http://[::1]:9000/.rt/hello/").unwrap();
    /// assert_eq!(e.authority(), "[::1]:9000");
    /// assert_eq!(e.path("/2018-06-01/runtime/invocation/next"), "/.rt/hello/2018-06-01/runtime/invocation/next");
    /// ```
    pub fn parse(value: &str) -> Result<Self, EndpointError> {
        let fail = |reason| EndpointError {
            value: value.to_owned(),
            reason,
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(fail("it is empty"));
        }
        let rest = match trimmed.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some(_) => return Err(fail("only the http scheme is supported")),
            None => trimmed,
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(fail("it names no host"));
        }
        let parsed: http::uri::Authority = authority
            .parse()
            .map_err(|_| fail("the host and port are not a valid authority"))?;
        if parsed.as_str().contains('@') {
            return Err(fail("user information is not allowed"));
        }
        if parsed.host().is_empty() {
            return Err(fail("it names no host"));
        }
        if authority.ends_with(':') {
            return Err(fail("the port is empty"));
        }
        // `http::uri::Authority` accepts a non-numeric port as part of the host, so the
        // port is checked here: whatever follows the host must be `:<1-65535>` or nothing.
        let after_host = match authority.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map(|(_, rest)| rest).unwrap_or(""),
            None => authority.find(':').map(|i| &authority[i..]).unwrap_or(""),
        };
        let authority = match after_host.strip_prefix(':') {
            None if after_host.is_empty() => format!("{}:80", parsed.as_str()),
            None => return Err(fail("the host and port are not a valid authority")),
            Some(port) => match port.parse::<u16>() {
                Ok(0) => return Err(fail("port 0 cannot be connected to")),
                Ok(_) => parsed.as_str().to_owned(),
                Err(_) => return Err(fail("the port is not a number from 1 to 65535")),
            },
        };
        if prefix.contains(['?', '#']) || prefix.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err(fail("the path prefix holds characters a path cannot"));
        }
        let host = HeaderValue::from_str(&authority)
            .map_err(|_| fail("the host is not a valid header value"))?;
        Ok(Endpoint {
            authority,
            prefix: prefix.trim_end_matches('/').to_owned(),
            host,
        })
    }

    /// Reads and parses `AWS_LAMBDA_RUNTIME_API` from the process environment.
    pub fn from_env() -> Result<Self, EndpointError> {
        match std::env::var(RUNTIME_API_ENV) {
            Ok(value) => Self::parse(&value),
            Err(_) => Err(EndpointError {
                value: String::new(),
                reason: "the variable is not set (is this running inside Lambda or an emulator?)",
            }),
        }
    }

    /// `host:port` to connect to (the port defaults to 80 when the value named none).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The path prefix (no trailing slash), empty in production.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The request path for an API path such as `/2018-06-01/runtime/invocation/next`.
    /// The `Host` header every request carries.
    pub(crate) fn host(&self) -> &HeaderValue {
        &self.host
    }

    pub fn path(&self, api_path: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + api_path.len());
        s.push_str(&self.prefix);
        s.push_str(api_path);
        s
    }
}

impl Endpoint {
    /// A request for `api_path` (e.g. `/2018-06-01/runtime/invocation/next`) with the `Host`
    /// header set; every Lambda API request is built here.
    pub fn request(&self, method: Method, api_path: &str, body: Bytes) -> Request<Bytes> {
        let mut req = Request::new(body);
        *req.method_mut() = method;
        // The prefix was checked at parse time and API paths come from validated parts, so
        // the path is a valid URI; an empty one would only be refused by the server.
        *req.uri_mut() = http::Uri::try_from(self.path(api_path)).unwrap_or_default();
        req.headers_mut().insert(header::HOST, self.host.clone());
        req
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_shapes() {
        let cases = [
            ("127.0.0.1:9001", "127.0.0.1:9001", ""),
            ("localhost:9001", "localhost:9001", ""),
            ("[::1]:9001", "[::1]:9001", ""),
            ("http://127.0.0.1:9001", "127.0.0.1:9001", ""),
            ("HTTP://127.0.0.1:9001/", "127.0.0.1:9001", ""),
            ("http://[::]:9000/.rt/my-fn", "[::]:9000", "/.rt/my-fn"),
            ("http://[::]:9000/.rt/my-fn/", "[::]:9000", "/.rt/my-fn"),
            ("127.0.0.1:9001/prefix", "127.0.0.1:9001", "/prefix"),
            ("http://localhost", "localhost:80", ""),
            ("  127.0.0.1:9001\n", "127.0.0.1:9001", ""),
        ];
        for (input, authority, prefix) in cases {
            let e = Endpoint::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(e.authority(), authority, "{input:?}");
            assert_eq!(e.prefix(), prefix, "{input:?}");
        }
    }

    #[test]
    fn rejected_shapes() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("https://127.0.0.1:9001", "scheme"),
            ("ftp://x:1", "scheme"),
            ("http://", "no host"),
            ("/just/a/path", "no host"),
            ("127.0.0.1:", "port is empty"),
            ("127.0.0.1:notaport", "port is not a number"),
            ("127.0.0.1:99999", "port is not a number"),
            ("127.0.0.1:0", "port 0"),
            ("user@127.0.0.1:9001", "user information"),
            ("127.0.0.1:9001/a b", "path prefix"),
            ("127.0.0.1:9001/a?b", "path prefix"),
        ];
        for (input, reason) in cases {
            let err = Endpoint::parse(input).expect_err(input);
            let text = err.to_string();
            assert!(text.contains(reason), "{input:?}: {text}");
            assert!(text.contains(RUNTIME_API_ENV), "{text}");
        }
    }

    #[test]
    fn paths_keep_the_prefix() {
        let e = Endpoint::parse("http://127.0.0.1:9000/.rt").unwrap();
        assert_eq!(
            e.path("/2018-06-01/runtime/invocation/next"),
            "/.rt/2018-06-01/runtime/invocation/next"
        );
        assert_eq!(e.to_string(), "http://127.0.0.1:9000/.rt");
    }
}
