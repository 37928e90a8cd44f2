//! The Extensions API (`2020-01-01`) and the subscription endpoints of the Telemetry
//! (`2022-07-01`) and Logs (`2020-08-15`) APIs: paths, requests, routes and event bodies,
//! shared by the extension crate and the emulator (protocol.md §2, §5, §6).

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::endpoint::Endpoint;
use crate::runtime_api::{Body, sanitize_error_type};
use crate::telemetry::TelemetrySubscription;

/// `POST`: register an extension.
pub const REGISTER_PATH: &str = "/2020-01-01/extension/register";
/// `GET`: the long-poll for the next lifecycle event.
pub const EVENT_NEXT_PATH: &str = "/2020-01-01/extension/event/next";
/// `POST`: report a failure during init.
pub const EXTENSION_INIT_ERROR_PATH: &str = "/2020-01-01/extension/init/error";
/// `POST`: report a failure after init.
pub const EXTENSION_EXIT_ERROR_PATH: &str = "/2020-01-01/extension/exit/error";
/// `PUT`: subscribe to the Telemetry API.
pub const TELEMETRY_PATH: &str = "/2022-07-01/telemetry";
/// `PUT`: subscribe to the (legacy) Logs API.
pub const LOGS_PATH: &str = "/2020-08-15/logs";

/// Header names of the Extensions API, in lower case.
pub mod headers {
    /// The name an extension registers under (its file name, for external extensions).
    pub const NAME: &str = "lambda-extension-name";
    /// The id Lambda assigns at registration; sent on every later call.
    pub const IDENTIFIER: &str = "lambda-extension-identifier";
    /// Optional features asked for at registration (`accountId`).
    pub const ACCEPT_FEATURE: &str = "lambda-extension-accept-feature";
    /// Error type for `init/error` and `exit/error`.
    pub const FUNCTION_ERROR_TYPE: &str = "lambda-extension-function-error-type";
    /// Id of one delivered event (RIE sends it on INVOKE events).
    pub const EVENT_IDENTIFIER: &str = "lambda-extension-event-identifier";
}

/// An Extensions, Telemetry or Logs API route, as the emulator sees a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionRoute {
    /// `POST /extension/register`
    Register,
    /// `GET /extension/event/next`
    Next,
    /// `POST /extension/init/error`
    InitError,
    /// `POST /extension/exit/error`
    ExitError,
    /// `PUT /2022-07-01/telemetry`
    Telemetry,
    /// `PUT /2020-08-15/logs`
    Logs,
}

impl ExtensionRoute {
    /// Matches a request path (without any endpoint prefix).
    pub fn parse(path: &str) -> Option<Self> {
        Some(match path {
            REGISTER_PATH => ExtensionRoute::Register,
            EVENT_NEXT_PATH => ExtensionRoute::Next,
            EXTENSION_INIT_ERROR_PATH => ExtensionRoute::InitError,
            EXTENSION_EXIT_ERROR_PATH => ExtensionRoute::ExitError,
            TELEMETRY_PATH => ExtensionRoute::Telemetry,
            LOGS_PATH => ExtensionRoute::Logs,
            _ => return None,
        })
    }

    /// The HTTP method this route takes.
    pub fn method(&self) -> Method {
        match self {
            ExtensionRoute::Next => Method::GET,
            ExtensionRoute::Telemetry | ExtensionRoute::Logs => Method::PUT,
            _ => Method::POST,
        }
    }
}

/// A lifecycle event an extension can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// An invocation starts.
    Invoke,
    /// The environment shuts down (external extensions only).
    Shutdown,
}

impl EventType {
    /// Parses the wire name (`INVOKE`, `SHUTDOWN`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "INVOKE" => Some(EventType::Invoke),
            "SHUTDOWN" => Some(EventType::Shutdown),
            _ => None,
        }
    }
}

/// Body of a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// The events to receive.
    pub events: Vec<EventType>,
}

/// Body of the registration reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    /// The function's name.
    pub function_name: String,
    /// The function's version.
    pub function_version: String,
    /// The function's handler setting.
    pub handler: String,
    /// The account id, when asked for with `Lambda-Extension-Accept-Feature: accountId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// An event from `/extension/event/next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "eventType", rename_all = "UPPERCASE")]
pub enum ExtensionEvent {
    /// An invocation started.
    Invoke(InvokeEvent),
    /// The environment is shutting down.
    Shutdown(ShutdownEvent),
}

/// An INVOKE event. Extensions never see the function's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokeEvent {
    /// The invocation's deadline, Unix epoch milliseconds (0 when an emulator sent none).
    #[serde(default)]
    pub deadline_ms: u64,
    /// The invocation's request id.
    #[serde(default)]
    pub request_id: String,
    /// The ARN the caller invoked.
    #[serde(default)]
    pub invoked_function_arn: String,
    /// The X-Ray trace, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
}

/// Trace context of an INVOKE event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracing {
    /// `X-Amzn-Trace-Id`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The trace header value.
    #[serde(default)]
    pub value: String,
}

/// A SHUTDOWN event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShutdownEvent {
    /// Why the environment shuts down.
    pub shutdown_reason: ShutdownReason,
    /// When the extension will be killed, Unix epoch milliseconds.
    #[serde(default)]
    pub deadline_ms: u64,
}

/// Why the environment shuts down, read case-insensitively (edge-cases B11): Lambda sends
/// lower case, its docs upper case, RIE `Timeout`/`ReleaseFail`, cargo-lambda free text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The environment was idle and is being reclaimed.
    Spindown,
    /// An invocation timed out.
    Timeout,
    /// Something failed: a crash, an out-of-memory kill, an `exit/error`.
    Failure,
    /// Any other text, kept as sent.
    Other(String),
}

impl ShutdownReason {
    /// Reads a reason as any platform or emulator spells it.
    pub fn parse(text: &str) -> Self {
        match text.to_ascii_lowercase().as_str() {
            "spindown" => ShutdownReason::Spindown,
            "timeout" => ShutdownReason::Timeout,
            "failure" | "releasefail" => ShutdownReason::Failure,
            _ => ShutdownReason::Other(text.to_owned()),
        }
    }

    /// The wire spelling (lower case, as production sends it).
    pub fn as_str(&self) -> &str {
        match self {
            ShutdownReason::Spindown => "spindown",
            ShutdownReason::Timeout => "timeout",
            ShutdownReason::Failure => "failure",
            ShutdownReason::Other(s) => s,
        }
    }
}

impl fmt::Display for ShutdownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ShutdownReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ShutdownReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(ShutdownReason::parse(&text))
    }
}

/// A header value that Lambda would refuse (an extension name or id with characters a
/// header cannot hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHeaderValue {
    /// Which header.
    pub header: &'static str,
}

impl fmt::Display for InvalidHeaderValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the value for {} holds characters a header cannot",
            self.header
        )
    }
}

impl std::error::Error for InvalidHeaderValue {}

fn header_value(header: &'static str, value: &str) -> Result<HeaderValue, InvalidHeaderValue> {
    HeaderValue::from_str(value).map_err(|_| InvalidHeaderValue { header })
}

/// The id Lambda gave an extension at registration, checked once so that every later
/// request can carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionId(HeaderValue);

impl ExtensionId {
    /// Checks that `id` can be sent in `Lambda-Extension-Identifier`.
    pub fn new(id: &str) -> Result<Self, InvalidHeaderValue> {
        header_value(headers::IDENTIFIER, id).map(ExtensionId)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// Builds Extensions, Telemetry and Logs API requests for one endpoint.
#[derive(Clone, Debug)]
pub struct ExtensionApi {
    endpoint: Endpoint,
}

impl ExtensionApi {
    /// Request builder for `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        ExtensionApi { endpoint }
    }

    /// `POST /extension/register` under `name` for `events`.
    pub fn register(
        &self,
        name: &str,
        events: &[EventType],
        accept_account_id: bool,
    ) -> Result<Request<Body>, InvalidHeaderValue> {
        let body = serde_json::to_vec(&RegisterRequest {
            events: events.to_vec(),
        })
        .unwrap_or_default();
        let mut req = self
            .endpoint
            .request(Method::POST, REGISTER_PATH, Bytes::from(body));
        let h = req.headers_mut();
        h.insert(headers::NAME, header_value(headers::NAME, name)?);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if accept_account_id {
            h.insert(
                headers::ACCEPT_FEATURE,
                HeaderValue::from_static("accountId"),
            );
        }
        Ok(req)
    }

    fn with_id(&self, method: Method, path: &str, id: &ExtensionId, body: Bytes) -> Request<Body> {
        let mut req = self.endpoint.request(method, path, body);
        req.headers_mut().insert(headers::IDENTIFIER, id.0.clone());
        req
    }

    /// `GET /extension/event/next`.
    pub fn next(&self, id: &ExtensionId) -> Request<Body> {
        self.with_id(Method::GET, EVENT_NEXT_PATH, id, Bytes::new())
    }

    /// `POST /extension/init/error` with an `ErrorRequest` JSON body.
    pub fn init_error(
        &self,
        id: &ExtensionId,
        error_type: &str,
        json_body: Bytes,
    ) -> Request<Body> {
        self.error(EXTENSION_INIT_ERROR_PATH, id, error_type, json_body)
    }

    /// `POST /extension/exit/error` with an `ErrorRequest` JSON body.
    pub fn exit_error(
        &self,
        id: &ExtensionId,
        error_type: &str,
        json_body: Bytes,
    ) -> Request<Body> {
        self.error(EXTENSION_EXIT_ERROR_PATH, id, error_type, json_body)
    }

    fn error(
        &self,
        path: &str,
        id: &ExtensionId,
        error_type: &str,
        json_body: Bytes,
    ) -> Request<Body> {
        let mut req = self.with_id(Method::POST, path, id, json_body);
        let h = req.headers_mut();
        h.insert(
            headers::FUNCTION_ERROR_TYPE,
            sanitize_error_type(error_type),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        req
    }

    /// `PUT /2022-07-01/telemetry`.
    pub fn subscribe_telemetry(
        &self,
        id: &ExtensionId,
        subscription: &TelemetrySubscription,
    ) -> Request<Body> {
        self.subscribe(TELEMETRY_PATH, id, subscription)
    }

    /// `PUT /2020-08-15/logs`.
    pub fn subscribe_logs(
        &self,
        id: &ExtensionId,
        subscription: &TelemetrySubscription,
    ) -> Request<Body> {
        self.subscribe(LOGS_PATH, id, subscription)
    }

    fn subscribe(
        &self,
        path: &str,
        id: &ExtensionId,
        subscription: &TelemetrySubscription,
    ) -> Request<Body> {
        let body = serde_json::to_vec(subscription).unwrap_or_default();
        let mut req = self.with_id(Method::PUT, path, id, Bytes::from(body));
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_leniently() {
        let invoke: ExtensionEvent = serde_json::from_str(
            r#"{"eventType":"INVOKE","deadlineMs":1,"requestId":"r","invokedFunctionArn":"a"}"#,
        )
        .unwrap();
        assert!(matches!(
            invoke,
            ExtensionEvent::Invoke(InvokeEvent { tracing: None, .. })
        ));
        // cargo-lambda's shape: lower-case trace type, zero deadline.
        let invoke: ExtensionEvent = serde_json::from_str(
            r#"{"eventType":"INVOKE","deadlineMs":0,"requestId":"r","invokedFunctionArn":"f","tracing":{"type":"x-amzn-trace-id","value":"Root=1"}}"#,
        )
        .unwrap();
        let ExtensionEvent::Invoke(i) = invoke else {
            panic!()
        };
        assert_eq!(i.tracing.unwrap().value, "Root=1");

        let reasons = [
            ("spindown", ShutdownReason::Spindown),
            ("SPINDOWN", ShutdownReason::Spindown),
            ("Timeout", ShutdownReason::Timeout),
            ("failure", ShutdownReason::Failure),
            ("ReleaseFail", ShutdownReason::Failure),
            (
                "recompiling function",
                ShutdownReason::Other("recompiling function".into()),
            ),
        ];
        for (text, reason) in reasons {
            let json =
                format!(r#"{{"eventType":"SHUTDOWN","shutdownReason":"{text}","deadlineMs":5}}"#);
            let e: ExtensionEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(
                e,
                ExtensionEvent::Shutdown(ShutdownEvent {
                    shutdown_reason: reason,
                    deadline_ms: 5
                })
            );
        }
        let out = serde_json::to_string(&ShutdownEvent {
            shutdown_reason: ShutdownReason::Timeout,
            deadline_ms: 1,
        })
        .unwrap();
        assert_eq!(out, r#"{"shutdownReason":"timeout","deadlineMs":1}"#);
    }

    #[test]
    fn requests_carry_the_headers() {
        let api = ExtensionApi::new(Endpoint::parse("127.0.0.1:9001").unwrap());
        let r = api
            .register("my-ext", &[EventType::Invoke, EventType::Shutdown], true)
            .unwrap();
        assert_eq!(r.uri(), REGISTER_PATH);
        assert_eq!(r.headers()[headers::NAME], "my-ext");
        assert_eq!(r.headers()[headers::ACCEPT_FEATURE], "accountId");
        assert!(api.register("bad\nname", &[], false).is_err());
        let id = ExtensionId::new("abc").unwrap();
        assert!(ExtensionId::new("a\nb").is_err());
        let n = api.next(&id);
        assert_eq!(
            (n.method(), n.uri().path()),
            (&Method::GET, EVENT_NEXT_PATH)
        );
        assert_eq!(n.headers()[headers::IDENTIFIER], "abc");
        let e = api.exit_error(&id, "Extension.Boom", Bytes::new());
        assert_eq!(e.headers()[headers::FUNCTION_ERROR_TYPE], "Extension.Boom");
        for (path, route) in [
            (REGISTER_PATH, ExtensionRoute::Register),
            (EVENT_NEXT_PATH, ExtensionRoute::Next),
            (EXTENSION_INIT_ERROR_PATH, ExtensionRoute::InitError),
            (EXTENSION_EXIT_ERROR_PATH, ExtensionRoute::ExitError),
            (TELEMETRY_PATH, ExtensionRoute::Telemetry),
            (LOGS_PATH, ExtensionRoute::Logs),
        ] {
            assert_eq!(ExtensionRoute::parse(path), Some(route));
        }
        assert_eq!(ExtensionRoute::Telemetry.method(), Method::PUT);
    }
}
