//! Telemetry API (`2022-07-01`) and Logs API (`2020-08-15`): the subscription body with its
//! documented limits, the delivered event envelope, and typed platform records
//! (protocol.md §5, §6). The emulator writes these types and the extension crate reads
//! them, so both sides share one definition.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Telemetry API schema versions, newest first; a client falls back down this list when a
/// platform refuses the newer one.
pub const TELEMETRY_SCHEMA_VERSIONS: [&str; 3] = ["2025-01-29", "2022-12-13", "2022-07-01"];
/// Logs API schema versions (`schemaVersion` may be left out and means the first).
pub const LOGS_SCHEMA_VERSIONS: [&str; 2] = ["2020-08-15", "2021-03-18"];

/// What a subscriber receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TelemetryType {
    /// Platform events (`platform.start`, `platform.report`, …).
    Platform,
    /// The function's log lines.
    Function,
    /// Extensions' log lines.
    Extension,
}

/// Batching of deliveries. Unset fields take the platform defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Buffering {
    /// Events per batch, 1,000 to 10,000 (default 10,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u32>,
    /// Bytes per batch, 262,144 to 1,048,576 (default 262,144).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u32>,
    /// How long events wait before a batch is sent, 25 to 30,000 ms (default 1,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u32>,
}

/// The documented buffering limits: (field, minimum, maximum, default).
pub const BUFFERING_LIMITS: [(&str, u32, u32, u32); 3] = [
    ("maxItems", 1_000, 10_000, 10_000),
    ("maxBytes", 262_144, 1_048_576, 262_144),
    ("timeoutMs", 25, 30_000, 1_000),
];

impl Buffering {
    /// Checks every set field against [`BUFFERING_LIMITS`].
    pub fn validate(&self) -> Result<(), String> {
        let values = [self.max_items, self.max_bytes, self.timeout_ms];
        for ((name, min, max, _), value) in BUFFERING_LIMITS.iter().zip(values) {
            if let Some(v) = value {
                if v < *min || v > *max {
                    return Err(format!(
                        "buffering.{name} must be between {min} and {max}, got {v}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// (maxItems, maxBytes, timeoutMs) with defaults filled in.
    pub fn resolved(&self) -> (u32, u32, u32) {
        let d = |i: usize| BUFFERING_LIMITS[i].3;
        (
            self.max_items.unwrap_or(d(0)),
            self.max_bytes.unwrap_or(d(1)),
            self.timeout_ms.unwrap_or(d(2)),
        )
    }
}

/// Where events are delivered: an HTTP listener or a TCP port inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "UPPERCASE")]
pub enum Destination {
    /// `POST` of a JSON array to `URI` (`http://sandbox.localdomain:PORT/path`).
    Http {
        /// The listener's URI.
        #[serde(rename = "URI")]
        uri: String,
    },
    /// Newline-delimited JSON to `port`.
    Tcp {
        /// The port.
        port: u16,
    },
}

/// Hosts a destination may name: the sandbox's own names, and loopback for local runs.
/// The names an HTTP destination may use (edge-cases C5): Lambda delivers only inside the
/// sandbox, to `sandbox.localdomain` (or `sandbox`); the emulator delivers those to
/// 127.0.0.1. A loopback address or any other host is refused, as Lambda refuses it.
const SANDBOX_HOSTS: [&str; 2] = ["sandbox.localdomain", "sandbox"];

impl Destination {
    /// The port and path an HTTP destination names, if it is inside the sandbox.
    pub fn http_target(&self) -> Result<(u16, String), String> {
        let Destination::Http { uri } = self else {
            return Err("not an HTTP destination".into());
        };
        let rest = uri
            .strip_prefix("http://")
            .ok_or_else(|| format!("destination URI {uri:?} must start with http://"))?;
        let (authority, path) = rest
            .find('/')
            .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| format!("destination URI {uri:?} must name a port"))?;
        if !SANDBOX_HOSTS.contains(&host) {
            return Err(format!(
                "destination host {host:?} must be sandbox.localdomain (or sandbox): Lambda delivers only inside the sandbox"
            ));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("destination port {port:?} is not valid"))?;
        Ok((port, path.to_owned()))
    }
}

/// The body of `PUT /2022-07-01/telemetry` and `PUT /2020-08-15/logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySubscription {
    /// The schema version; optional for the Logs API.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema_version: String,
    /// What to receive; at least one.
    pub types: Vec<TelemetryType>,
    /// Batching.
    #[serde(default)]
    pub buffering: Buffering,
    /// Where to deliver.
    pub destination: Destination,
}

/// Which subscription API a body was sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionApi {
    /// `PUT /2022-07-01/telemetry`.
    Telemetry,
    /// `PUT /2020-08-15/logs`.
    Logs,
}

impl TelemetrySubscription {
    /// Checks the body as Lambda does: a known schema version, at least one type, buffering
    /// within limits, a destination inside the sandbox.
    pub fn validate(&self, api: SubscriptionApi) -> Result<(), String> {
        let known: &[&str] = match api {
            SubscriptionApi::Telemetry => &TELEMETRY_SCHEMA_VERSIONS,
            SubscriptionApi::Logs => &LOGS_SCHEMA_VERSIONS,
        };
        let optional = api == SubscriptionApi::Logs && self.schema_version.is_empty();
        if !optional && !known.contains(&self.schema_version.as_str()) {
            return Err(format!(
                "schemaVersion {:?} is not one of {known:?}",
                self.schema_version
            ));
        }
        if self.types.is_empty() {
            return Err("types must name at least one of platform, function, extension".into());
        }
        self.buffering.validate()?;
        match &self.destination {
            Destination::Http { .. } => self.destination.http_target().map(|_| ()),
            Destination::Tcp { port: 0 } => Err("destination port must not be 0".into()),
            Destination::Tcp { .. } => Ok(()),
        }
    }
}

/// One delivered event: `{"time","type","record"}`. The record is kept as JSON so that an
/// unknown or newer type never fails a batch; [`TelemetryEvent::parse`] gives typed records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryEvent {
    /// RFC 3339 time with milliseconds.
    pub time: String,
    /// `platform.start`, `function`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The record: an object for platform events, a string (or object, in JSON log format)
    /// for log lines.
    pub record: Value,
}

/// `metrics` of `platform.report`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportMetrics {
    /// Invocation duration.
    pub duration_ms: f64,
    /// Billed duration.
    #[serde(default)]
    pub billed_duration_ms: u64,
    /// Configured memory.
    #[serde(default, rename = "memorySizeMB")]
    pub memory_size_mb: u64,
    /// Peak memory used.
    #[serde(default, rename = "maxMemoryUsedMB")]
    pub max_memory_used_mb: u64,
    /// Init duration, on cold starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_duration_ms: Option<f64>,
}

/// `metrics` of `platform.runtimeDone` and `platform.initReport`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurationMetrics {
    /// Duration of the phase.
    pub duration_ms: f64,
}

/// A platform record of an invocation phase (`platform.start`, `runtimeDone`, `report`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRecord {
    /// The invocation's request id.
    pub request_id: String,
    /// `success`, `failure`, `error` or `timeout` (not on `platform.start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The error type, when the status is not success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// The version (on `platform.start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Metrics (`platform.runtimeDone`: durationMs; `platform.report`: the REPORT figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Value>,
}

/// A platform record of the init phase (`initStart`, `initRuntimeDone`, `initReport`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitRecord {
    /// `on-demand`, `provisioned-concurrency`, `snap-start`.
    pub initialization_type: String,
    /// `init` or `invoke`.
    #[serde(default)]
    pub phase: String,
    /// Outcome, on `initRuntimeDone` and `initReport`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Error type, when init failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// `{durationMs}` on `initReport`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<DurationMetrics>,
}

/// `platform.extension`: an extension registered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionRecord {
    /// The extension's name.
    pub name: String,
    /// `Ready`.
    pub state: String,
    /// The events it subscribed to.
    #[serde(default)]
    pub events: Vec<String>,
}

/// `platform.telemetrySubscription` / `platform.logsSubscription`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionRecord {
    /// The subscriber's name.
    pub name: String,
    /// `Subscribed`.
    pub state: String,
    /// What it subscribed to.
    #[serde(default)]
    pub types: Vec<TelemetryType>,
}

/// A telemetry event, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum TelemetryRecord {
    /// `platform.initStart`.
    InitStart(InitRecord),
    /// `platform.initRuntimeDone`.
    InitRuntimeDone(InitRecord),
    /// `platform.initReport`.
    InitReport(InitRecord),
    /// `platform.start`.
    Start(InvocationRecord),
    /// `platform.runtimeDone`.
    RuntimeDone(InvocationRecord),
    /// `platform.report`, with its metrics.
    Report(InvocationRecord, ReportMetrics),
    /// `platform.extension`.
    Extension(ExtensionRecord),
    /// `platform.telemetrySubscription` or `platform.logsSubscription`.
    Subscription(SubscriptionRecord),
    /// A line the function logged.
    FunctionLog(Value),
    /// A line an extension logged.
    ExtensionLog(Value),
    /// Any other type, or a record that did not have the expected shape.
    Other(TelemetryEvent),
}

impl TelemetryEvent {
    /// Builds an event stamped now.
    pub fn now(kind: impl Into<String>, record: Value) -> Self {
        TelemetryEvent {
            time: crate::time::rfc3339_now(),
            kind: kind.into(),
            record,
        }
    }

    /// The typed record; shapes that do not match become [`TelemetryRecord::Other`].
    pub fn parse(&self) -> TelemetryRecord {
        fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
            serde_json::from_value(v.clone()).ok()
        }
        let r = &self.record;
        let parsed = match self.kind.as_str() {
            "platform.initStart" => typed(r).map(TelemetryRecord::InitStart),
            "platform.initRuntimeDone" => typed(r).map(TelemetryRecord::InitRuntimeDone),
            "platform.initReport" => typed(r).map(TelemetryRecord::InitReport),
            "platform.start" => typed(r).map(TelemetryRecord::Start),
            "platform.runtimeDone" => typed(r).map(TelemetryRecord::RuntimeDone),
            "platform.report" => typed::<InvocationRecord>(r).and_then(|rec| {
                let metrics = typed(rec.metrics.as_ref()?)?;
                Some(TelemetryRecord::Report(rec, metrics))
            }),
            "platform.extension" => typed(r).map(TelemetryRecord::Extension),
            "platform.telemetrySubscription" | "platform.logsSubscription" => {
                typed(r).map(TelemetryRecord::Subscription)
            }
            "function" => Some(TelemetryRecord::FunctionLog(r.clone())),
            "extension" => Some(TelemetryRecord::ExtensionLog(r.clone())),
            _ => None,
        };
        parsed.unwrap_or_else(|| TelemetryRecord::Other(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subscription(body: Value) -> TelemetrySubscription {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn subscriptions_are_validated_against_the_documented_limits() {
        let ok = subscription(json!({
            "schemaVersion": "2022-12-13",
            "types": ["platform", "function"],
            "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
            "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/t"}
        }));
        assert_eq!(ok.validate(SubscriptionApi::Telemetry), Ok(()));
        assert_eq!(
            ok.destination.http_target().unwrap(),
            (4243, "/t".to_owned())
        );

        let cases = [
            (json!({"schemaVersion": "2019-01-01"}), "schemaVersion"),
            (json!({"types": []}), "at least one"),
            (json!({"buffering": {"maxItems": 999}}), "maxItems"),
            (json!({"buffering": {"maxBytes": 2_000_000}}), "maxBytes"),
            (json!({"buffering": {"timeoutMs": 24}}), "timeoutMs"),
            (
                json!({"destination": {"protocol": "HTTP", "URI": "http://example.com:80/"}}),
                "sandbox.localdomain",
            ),
            (
                json!({"destination": {"protocol": "HTTP", "URI": "http://127.0.0.1:4243/"}}),
                "sandbox.localdomain",
            ),
            (
                json!({"destination": {"protocol": "HTTP", "URI": "http://localhost:4243/"}}),
                "sandbox.localdomain",
            ),
            (
                json!({"destination": {"protocol": "HTTP", "URI": "https://sandbox:80/"}}),
                "http://",
            ),
            (
                json!({"destination": {"protocol": "HTTP", "URI": "http://sandbox/"}}),
                "port",
            ),
        ];
        for (change, expected) in cases {
            let mut body = serde_json::to_value(&ok).unwrap();
            for (k, v) in change.as_object().unwrap() {
                body[k] = v.clone();
            }
            let err = subscription(body)
                .validate(SubscriptionApi::Telemetry)
                .unwrap_err();
            assert!(err.contains(expected), "{change}: {err}");
        }
        let mut logs = ok.clone();
        logs.schema_version.clear();
        assert_eq!(logs.validate(SubscriptionApi::Logs), Ok(()));
        assert!(logs.validate(SubscriptionApi::Telemetry).is_err());
        assert_eq!(Buffering::default().resolved(), (10_000, 262_144, 1_000));
    }

    #[test]
    fn records_are_typed_and_unknown_ones_kept() {
        let report = TelemetryEvent::now(
            "platform.report",
            json!({"requestId": "r", "status": "success", "metrics": {"durationMs": 1.5, "billedDurationMs": 2, "memorySizeMB": 128, "maxMemoryUsedMB": 20}}),
        );
        let TelemetryRecord::Report(rec, m) = report.parse() else {
            panic!("{report:?}")
        };
        assert_eq!(
            (
                rec.request_id.as_str(),
                m.billed_duration_ms,
                m.max_memory_used_mb
            ),
            ("r", 2, 20)
        );

        let unknown = TelemetryEvent::now("platform.somethingNew", json!({"x": 1}));
        assert_eq!(unknown.parse(), TelemetryRecord::Other(unknown.clone()));
        let malformed = TelemetryEvent::now("platform.start", json!("not an object"));
        assert!(matches!(malformed.parse(), TelemetryRecord::Other(_)));
        let batch: Vec<TelemetryEvent> =
            serde_json::from_str(r#"[{"time":"t","type":"function","record":"hello"},{"time":"t","type":"new","record":{}}]"#).unwrap();
        assert_eq!(
            batch[0].parse(),
            TelemetryRecord::FunctionLog(json!("hello"))
        );
    }
}
