//! An HTTP event off the wire, whichever trigger sent it, and the `http::Request` it
//! becomes.
//!
//! The triggers differ in ways that lose data when glossed over, so each rule below is
//! the trigger's own:
//! - **Query strings.** HTTP API and Function URL events carry `rawQueryString` exactly as
//!   sent, which is used verbatim. REST API events carry decoded values, which are encoded
//!   again. ALB events carry the values *as sent, not decoded*, which are joined as they are.
//!   Repeated names come from the `multiValue…` fields when present.
//! - **Headers.** REST and ALB events may carry `multiValueHeaders` (each value kept);
//!   payload 2.0 joins repeated headers with commas and moves cookies to `cookies`, which
//!   become one `cookie` header again.
//! - **Paths.** The URI's path is the one the client sent (`/Prod/hello` on a REST API
//!   stage); [`Adapter::strip_stage`](crate::Adapter::strip_stage) routes on the path below
//!   the stage instead.
//! - **Bodies.** `isBase64Encoded` bodies are decoded; text bodies are taken without a copy.

use std::fmt;
use std::marker::PhantomData;

use base64::Engine;
use bytes::Bytes;
use http::header::{COOKIE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};
use ironlambda_runtime::{Error, INVALID_EVENT_ERROR_TYPE};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::body::Body;
use crate::context::{AlbContext, RequestContext, Trigger};
use crate::ext::{PathParameters, RawPath, StageVariables};

/// Bytes a URI query may not hold as they are: escaped, so that a query from an event
/// always makes a valid URI. `%` is kept: what is already encoded stays as it is.
const QUERY_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');
/// The same for a path, where `?` would start the query.
const PATH_ESCAPES: &AsciiSet = &QUERY_ESCAPES.add(b'?');

/// An HTTP event from API Gateway (REST, HTTP or WebSocket API), an ALB or a Function
/// URL, recognised from its shape. [`Adapter`](crate::Adapter) reads every invocation's
/// payload as one; tests can too, to turn a sample event into the request a service gets:
///
/// ```
/// use ironlambda_http::{HttpEvent, Trigger};
/// let event: HttpEvent = serde_json::from_str(r#"{
///     "version": "2.0", "rawPath": "/hello", "rawQueryString": "a=1&a=2",
///     "headers": {"accept": "text/plain"}, "isBase64Encoded": false,
///     "requestContext": {"http": {"method": "GET", "path": "/hello"}, "stage": "$default",
///                        "domainName": "abc.lambda-url.us-east-1.on.aws"}
/// }"#).unwrap();
/// assert_eq!(event.trigger(), Trigger::FunctionUrl);
/// let request = event.into_request(false).unwrap();
/// assert_eq!(request.uri(), "/hello?a=1&a=2");
/// ```
#[derive(Debug)]
pub struct HttpEvent {
    trigger: Trigger,
    wire: Wire,
    context: RequestContext,
}

/// Every field any HTTP trigger sends, as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    version: Option<String>,
    http_method: Option<String>,
    path: Option<String>,
    raw_path: Option<String>,
    raw_query_string: Option<String>,
    cookies: Option<Vec<String>>,
    headers: Option<Pairs<String>>,
    multi_value_headers: Option<Pairs<Vec<String>>>,
    query_string_parameters: Option<Pairs<String>>,
    multi_value_query_string_parameters: Option<Pairs<Vec<String>>>,
    path_parameters: Option<Pairs<String>>,
    stage_variables: Option<Pairs<String>>,
    request_context: Option<Box<RawValue>>,
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

/// Just enough of `requestContext` to tell the triggers apart.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Probe {
    elb: Option<IgnoredAny>,
    http: Option<IgnoredAny>,
    connection_id: Option<IgnoredAny>,
    domain_name: Option<String>,
}

impl<'de> Deserialize<'de> for HttpEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let raw_context = wire.request_context.as_deref().map(RawValue::get);
        let probe: Probe = match raw_context {
            Some(raw) => serde_json::from_str(raw).map_err(de::Error::custom)?,
            None => Probe::default(),
        };
        let trigger = if probe.elb.is_some() {
            Trigger::Alb {
                multi_value: wire.multi_value_headers.is_some(),
            }
        } else if wire.version.as_deref() == Some("2.0") || probe.http.is_some() {
            // A Function URL sends the HTTP API's shape; only its domain tells them apart.
            match probe.domain_name.as_deref() {
                Some(d) if d.contains(".lambda-url.") => Trigger::FunctionUrl,
                _ => Trigger::ApiGatewayHttp,
            }
        } else if probe.connection_id.is_some() {
            Trigger::WebSocket
        } else if wire.http_method.is_some() {
            Trigger::ApiGatewayRest
        } else {
            return Err(de::Error::custom(
                "this is not an HTTP event: expected one from API Gateway (REST, HTTP or WebSocket API), an Application Load Balancer or a Function URL",
            ));
        };
        let raw_context = raw_context.unwrap_or("{}");
        let context = match trigger {
            Trigger::ApiGatewayRest => RequestContext::ApiGatewayRest(context_of(raw_context)?),
            Trigger::ApiGatewayHttp => RequestContext::ApiGatewayHttp(context_of(raw_context)?),
            Trigger::FunctionUrl => RequestContext::FunctionUrl(context_of(raw_context)?),
            Trigger::Alb { .. } => {
                let elb = Elb::deserialize(&mut serde_json::Deserializer::from_str(raw_context))
                    .map_err(de::Error::custom)?;
                RequestContext::Alb(elb.elb)
            }
            Trigger::WebSocket => RequestContext::WebSocket(context_of(raw_context)?),
        };
        Ok(HttpEvent {
            trigger,
            wire,
            context,
        })
    }
}

/// An ALB's `requestContext`: `{"elb": {…}}`.
#[derive(Deserialize)]
struct Elb {
    elb: AlbContext,
}

fn context_of<'a, T: Deserialize<'a>, E: de::Error>(raw: &'a str) -> Result<T, E> {
    serde_json::from_str(raw).map_err(|e| E::custom(format_args!("requestContext: {e}")))
}

impl HttpEvent {
    /// The trigger that sent the event.
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// The trigger's request context.
    pub fn request_context(&self) -> &RequestContext {
        &self.context
    }

    /// The request a service gets: method, URI (path and query string), headers and body
    /// as the client sent them, with the trigger's [`RequestContext`], path parameters and
    /// stage variables as extensions (read them with [`RequestExt`](crate::RequestExt)).
    /// With `strip_stage`, the URI's path is the one below the API Gateway stage.
    ///
    /// An event that cannot make a request (an unknown method, a header that is not
    /// valid HTTP, a body that is not base64 although flagged so) is an error of type
    /// `Runtime.InvalidEvent`.
    pub fn into_request(self, strip_stage: bool) -> Result<http::Request<Body>, Error> {
        let HttpEvent {
            trigger,
            wire,
            context,
        } = self;
        let method = match (&context, wire.http_method.as_deref()) {
            (RequestContext::ApiGatewayHttp(c) | RequestContext::FunctionUrl(c), _) => {
                c.http.method.as_str()
            }
            (_, Some(m)) => m,
            // WebSocket messages have no method of their own.
            (_, None) => "POST",
        };
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| invalid(format!("{method:?} is not an HTTP method")))?;

        let (raw_path, stage_path) = paths(&context, &wire);
        let path = if strip_stage {
            stage_path.as_deref().unwrap_or(&raw_path)
        } else {
            &raw_path
        };
        let query = query(trigger, &wire);
        let mut uri = String::with_capacity(path.len() + query.len() + 1);
        uri.extend(utf8_percent_encode(path, PATH_ESCAPES));
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(&query);
        }
        let uri = Uri::try_from(uri).map_err(|e| invalid(format!("the request URI: {e}")))?;

        let headers = headers(&wire)?;
        let body = match wire.body {
            None => Body::empty(),
            Some(b) if wire.is_base64_encoded => base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map(Body::from)
                .map_err(|e| invalid(format!("the body is flagged base64 but is not: {e}")))?,
            Some(b) => Body::from(Bytes::from(b)),
        };

        let mut request = http::Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let extensions = request.extensions_mut();
        if let Some(p) = wire.path_parameters.filter(|p| !p.0.is_empty()) {
            extensions.insert(PathParameters(p.0.into_iter().collect()));
        }
        if let Some(s) = wire.stage_variables.filter(|s| !s.0.is_empty()) {
            extensions.insert(StageVariables(s.0.into_iter().collect()));
        }
        extensions.insert(RawPath(raw_path));
        extensions.insert(context);
        Ok(request)
    }
}

/// An `invalid event` error.
fn invalid(message: String) -> Error {
    Error::new(INVALID_EVENT_ERROR_TYPE, message)
}

/// The path the client sent, and the path below the stage when the trigger has stages.
fn paths(context: &RequestContext, wire: &Wire) -> (String, Option<String>) {
    match context {
        RequestContext::ApiGatewayRest(c) => {
            // `path` is below the stage; `requestContext.path` is what the client sent.
            let below = wire.path.clone().unwrap_or_else(|| "/".to_owned());
            let raw = c.path.clone().unwrap_or_else(|| below.clone());
            (raw, Some(below))
        }
        RequestContext::ApiGatewayHttp(c) | RequestContext::FunctionUrl(c) => {
            let raw = wire.raw_path.clone().unwrap_or_else(|| c.http.path.clone());
            let raw = if raw.is_empty() { "/".to_owned() } else { raw };
            let below = below_stage(&raw, &c.stage).map(str::to_owned);
            (raw, below)
        }
        RequestContext::Alb(_) | RequestContext::WebSocket(_) => {
            (wire.path.clone().unwrap_or_else(|| "/".to_owned()), None)
        }
    }
}

/// `path` without a leading `/{stage}` (a named HTTP API stage is part of the path).
fn below_stage<'a>(path: &'a str, stage: &str) -> Option<&'a str> {
    if stage.is_empty() || stage == "$default" {
        return None;
    }
    let rest = path.strip_prefix('/')?.strip_prefix(stage)?;
    match rest {
        "" => Some("/"),
        r if r.starts_with('/') => Some(r),
        _ => None,
    }
}

/// The query string, without the `?`, in the form the trigger's rules call for.
fn query(trigger: Trigger, wire: &Wire) -> String {
    match trigger {
        Trigger::ApiGatewayHttp | Trigger::FunctionUrl => wire
            .raw_query_string
            .as_deref()
            .map(|q| utf8_percent_encode(q, QUERY_ESCAPES).to_string())
            .unwrap_or_default(),
        Trigger::Alb { .. } => {
            // As sent: joined, not encoded again; only bytes a URI cannot hold are escaped.
            let mut out = String::new();
            for (name, value) in query_pairs(wire) {
                if !out.is_empty() {
                    out.push('&');
                }
                out.extend(utf8_percent_encode(name, QUERY_ESCAPES));
                out.push('=');
                out.extend(utf8_percent_encode(value, QUERY_ESCAPES));
            }
            out
        }
        Trigger::ApiGatewayRest | Trigger::WebSocket => {
            let mut out = form_urlencoded::Serializer::new(String::new());
            for (name, value) in query_pairs(wire) {
                out.append_pair(name, value);
            }
            out.finish()
        }
    }
}

/// The query's pairs from the multi-value field when present, else the single-value one.
fn query_pairs(wire: &Wire) -> Box<dyn Iterator<Item = (&str, &str)> + '_> {
    match (
        &wire.multi_value_query_string_parameters,
        &wire.query_string_parameters,
    ) {
        (Some(multi), _) if !multi.0.is_empty() => Box::new(
            multi
                .0
                .iter()
                .flat_map(|(n, vs)| vs.iter().map(move |v| (n.as_str(), v.as_str()))),
        ),
        (_, Some(single)) => Box::new(single.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
        _ => Box::new(std::iter::empty()),
    }
}

/// The headers: every value of the multi-value field when present, else the single-value
/// field; payload 2.0 cookies as one `cookie` header.
fn headers(wire: &Wire) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    let mut add = |name: &str, value: &str| -> Result<(), Error> {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(format!("{name:?} is not an HTTP header name")))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("the value of header {name:?} is not valid HTTP")))?;
        map.append(n, v);
        Ok(())
    };
    match (&wire.multi_value_headers, &wire.headers) {
        (Some(multi), _) if !multi.0.is_empty() => {
            for (name, values) in &multi.0 {
                for value in values {
                    add(name, value)?;
                }
            }
        }
        (_, Some(single)) => {
            for (name, value) in &single.0 {
                add(name, value)?;
            }
        }
        _ => {}
    }
    if let Some(cookies) = wire.cookies.as_ref().filter(|c| !c.is_empty()) {
        add(COOKIE.as_str(), &cookies.join("; "))?;
    }
    Ok(map)
}

/// A JSON object as name–value pairs in document order (a `null` object is absent).
#[derive(Debug)]
struct Pairs<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Pairs<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<V> {
            type Value = Pairs<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs<V>, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry()? {
                    pairs.push(entry);
                }
                Ok(Pairs(pairs))
            }
        }

        deserializer.deserialize_map(PairsVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_stage_is_stripped_only_as_a_whole_segment() {
        assert_eq!(below_stage("/dev/hello", "dev"), Some("/hello"));
        assert_eq!(below_stage("/dev", "dev"), Some("/"));
        assert_eq!(below_stage("/devices", "dev"), None);
        assert_eq!(below_stage("/hello", "$default"), None);
    }

    #[test]
    fn an_event_of_no_http_trigger_is_refused_with_what_was_expected() {
        let e = serde_json::from_str::<HttpEvent>(r#"{"Records": []}"#).unwrap_err();
        assert!(e.to_string().contains("not an HTTP event"), "{e}");
    }
}
