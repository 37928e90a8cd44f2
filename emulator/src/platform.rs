//! What the platform says about an environment, rendered: the log lines Lambda writes
//! (`INIT_START`, `START`, `END`, `REPORT`, `INIT_REPORT`, the timeout and failure lines;
//! protocol.md §5) and the `platform.*` Telemetry API records (§6), both from one typed
//! [`Fact`] the lifecycle emits. The lifecycle decides what happened; this module only
//! says it, in Lambda's words.

use std::time::Duration;

use ironlambda_api_client::telemetry::{
    DurationMetrics, ExtensionRecord, InitRecord, InvocationRecord, ReportMetrics, SubscriptionApi,
    SubscriptionRecord, TelemetryEvent, TelemetryType,
};

use crate::config::FunctionConfig;

/// Something the platform reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fact {
    /// Init began; `suppressed` when it is the retry inside an invoke (phase `invoke`).
    InitStart { suppressed: bool },
    /// Init finished well.
    InitDone {
        suppressed: bool,
        duration: Duration,
    },
    /// Init failed (`status` `error` or `timeout`).
    InitFailed {
        suppressed: bool,
        status: &'static str,
        error_type: String,
        duration: Duration,
    },
    /// An invocation began.
    Start { request_id: String },
    /// The runtime answered (`status` `success`, `error` or `failure`).
    RuntimeDone {
        request_id: String,
        status: &'static str,
        error_type: Option<String>,
        duration: Duration,
    },
    /// An invocation is over: `END` and `REPORT`.
    Report {
        request_id: String,
        duration: Duration,
        init_duration: Option<Duration>,
        status: &'static str,
        error_type: Option<String>,
    },
    /// An invocation ran out of time.
    TimedOut {
        request_id: String,
        timeout: Duration,
    },
    /// The platform failed an invocation (a crash, an extension failure, an init error).
    Failed {
        request_id: String,
        error_type: String,
        reason: String,
    },
    /// An extension registered.
    ExtensionRegistered { name: String, events: Vec<String> },
    /// An extension subscribed to telemetry.
    Subscribed {
        name: String,
        api: SubscriptionApi,
        types: Vec<TelemetryType>,
    },
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// provided.* runtimes are billed for init as well, per 1 ms.
fn billed_ms(duration: Duration, init: Option<Duration>) -> u64 {
    (ms(duration) + init.map_or(0.0, ms)).ceil().max(1.0) as u64
}

fn init_record(suppressed: bool) -> InitRecord {
    InitRecord {
        initialization_type: "on-demand".into(),
        phase: if suppressed { "invoke" } else { "init" }.into(),
        ..InitRecord::default()
    }
}

/// The log lines `fact` writes (none for the facts only telemetry sees). `peak_mb` is the
/// runtime's peak memory, for `REPORT`.
pub(crate) fn log_lines(fact: &Fact, config: &FunctionConfig, peak_mb: u64) -> Vec<String> {
    match fact {
        Fact::InitStart { .. } => {
            vec!["INIT_START Runtime Version: provided:al2023 (ironlambda-emulator)".into()]
        }
        Fact::InitFailed {
            suppressed,
            status,
            error_type,
            duration,
        } => {
            let phase = if *suppressed { "invoke" } else { "init" };
            let mut line = format!(
                "INIT_REPORT Init Duration: {:.2} ms\tPhase: {phase}\tStatus: {status}",
                ms(*duration)
            );
            if *status == "error" {
                line.push_str(&format!("\tError Type: {error_type}"));
            }
            vec![line]
        }
        Fact::Start { request_id } => {
            vec![format!("START RequestId: {request_id} Version: $LATEST")]
        }
        Fact::Report {
            request_id,
            duration,
            init_duration,
            status,
            error_type,
        } => {
            let mut line = format!(
                "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {peak_mb} MB",
                ms(*duration),
                billed_ms(*duration, *init_duration),
                config.memory_mb,
            );
            if let Some(init) = init_duration {
                line.push_str(&format!("\tInit Duration: {:.2} ms", ms(*init)));
            }
            if *status != "success" {
                line.push_str(&format!("\tStatus: {status}"));
            }
            if let Some(t) = error_type {
                line.push_str(&format!("\tError Type: {t}"));
            }
            vec![format!("END RequestId: {request_id}"), line]
        }
        Fact::TimedOut {
            request_id,
            timeout,
        } => vec![format!(
            "{} {request_id} Task timed out after {:.2} seconds",
            ironlambda_api_client::time::rfc3339_now(),
            timeout.as_secs_f64()
        )],
        Fact::Failed {
            request_id,
            error_type,
            reason,
        } => vec![format!(
            "RequestId: {request_id} Error: {reason}\n{error_type}"
        )],
        Fact::InitDone { .. }
        | Fact::RuntimeDone { .. }
        | Fact::ExtensionRegistered { .. }
        | Fact::Subscribed { .. } => Vec::new(),
    }
}

fn json<T: serde::Serialize>(record: &T) -> serde_json::Value {
    serde_json::to_value(record).unwrap_or_default()
}

/// An invocation record with its outcome and `metrics`.
fn outcome(
    request_id: &str,
    status: &str,
    error_type: &Option<String>,
    metrics: serde_json::Value,
) -> serde_json::Value {
    json(&InvocationRecord {
        request_id: request_id.to_owned(),
        status: Some(status.to_owned()),
        error_type: error_type.clone(),
        metrics: Some(metrics),
        ..InvocationRecord::default()
    })
}

/// The `platform.*` Telemetry API events `fact` publishes.
pub(crate) fn telemetry(fact: &Fact, config: &FunctionConfig, peak_mb: u64) -> Vec<TelemetryEvent> {
    let event = |kind: &str, record: serde_json::Value| TelemetryEvent::now(kind, record);
    match fact {
        Fact::InitStart { suppressed } => {
            vec![event("platform.initStart", json(&init_record(*suppressed)))]
        }
        Fact::InitDone {
            suppressed,
            duration,
        } => {
            let done = InitRecord {
                status: Some("success".into()),
                ..init_record(*suppressed)
            };
            let report = InitRecord {
                metrics: Some(DurationMetrics {
                    duration_ms: ms(*duration),
                }),
                ..done.clone()
            };
            vec![
                event("platform.initRuntimeDone", json(&done)),
                event("platform.initReport", json(&report)),
            ]
        }
        Fact::InitFailed {
            suppressed,
            status,
            error_type,
            duration,
        } => vec![event(
            "platform.initReport",
            json(&InitRecord {
                status: Some((*status).into()),
                error_type: Some(error_type.clone()),
                metrics: Some(DurationMetrics {
                    duration_ms: ms(*duration),
                }),
                ..init_record(*suppressed)
            }),
        )],
        Fact::Start { request_id } => vec![event(
            "platform.start",
            json(&InvocationRecord {
                request_id: request_id.clone(),
                version: Some("$LATEST".into()),
                ..InvocationRecord::default()
            }),
        )],
        Fact::RuntimeDone {
            request_id,
            status,
            error_type,
            duration,
        } => vec![event(
            "platform.runtimeDone",
            outcome(
                request_id,
                status,
                error_type,
                json(&DurationMetrics {
                    duration_ms: ms(*duration),
                }),
            ),
        )],
        Fact::Report {
            request_id,
            duration,
            init_duration,
            status,
            error_type,
        } => vec![event(
            "platform.report",
            outcome(
                request_id,
                status,
                error_type,
                json(&ReportMetrics {
                    duration_ms: ms(*duration),
                    billed_duration_ms: billed_ms(*duration, *init_duration),
                    memory_size_mb: u64::from(config.memory_mb),
                    max_memory_used_mb: peak_mb,
                    init_duration_ms: init_duration.map(ms),
                }),
            ),
        )],
        Fact::ExtensionRegistered { name, events } => vec![event(
            "platform.extension",
            json(&ExtensionRecord {
                name: name.clone(),
                state: "Ready".into(),
                events: events.clone(),
            }),
        )],
        Fact::Subscribed { name, api, types } => {
            let kind = match api {
                SubscriptionApi::Telemetry => "platform.telemetrySubscription",
                SubscriptionApi::Logs => "platform.logsSubscription",
            };
            vec![event(
                kind,
                json(&SubscriptionRecord {
                    name: name.clone(),
                    state: "Subscribed".into(),
                    types: types.clone(),
                }),
            )]
        }
        Fact::TimedOut { .. } | Fact::Failed { .. } => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> FunctionConfig {
        FunctionConfig::new("/var/task/bootstrap")
    }

    #[test]
    fn a_report_line_carries_lambdas_figures_and_only_a_failures_status() {
        let ok = Fact::Report {
            request_id: "r-1".into(),
            duration: Duration::from_micros(12_345),
            init_duration: Some(Duration::from_millis(20)),
            status: "success",
            error_type: None,
        };
        let lines = log_lines(&ok, &config(), 17);
        assert_eq!(lines[0], "END RequestId: r-1");
        assert_eq!(
            lines[1],
            "REPORT RequestId: r-1\tDuration: 12.35 ms\tBilled Duration: 33 ms\tMemory Size: 128 MB\tMax Memory Used: 17 MB\tInit Duration: 20.00 ms"
        );
        let failed = Fact::Report {
            request_id: "r-2".into(),
            duration: Duration::from_millis(3),
            init_duration: None,
            status: "error",
            error_type: Some("Runtime.ExitError".into()),
        };
        assert!(
            log_lines(&failed, &config(), 1)[1]
                .ends_with("Status: error\tError Type: Runtime.ExitError")
        );
    }

    #[test]
    fn a_report_record_has_typed_metrics() {
        let fact = Fact::Report {
            request_id: "r-1".into(),
            duration: Duration::from_millis(2),
            init_duration: None,
            status: "success",
            error_type: None,
        };
        let events = telemetry(&fact, &config(), 9);
        assert_eq!(events[0].kind, "platform.report");
        let metrics = &events[0].record["metrics"];
        assert_eq!(metrics["billedDurationMs"], 2);
        assert_eq!(metrics["maxMemoryUsedMB"], 9);
        assert_eq!(metrics["memorySizeMB"], 128);
        assert!(metrics.get("initDurationMs").is_none());
    }

    #[test]
    fn a_failed_init_reports_its_phase_and_only_errors_name_a_type() {
        let timeout = Fact::InitFailed {
            suppressed: true,
            status: "timeout",
            error_type: "Sandbox.Timedout".into(),
            duration: Duration::from_millis(1000),
        };
        assert_eq!(
            log_lines(&timeout, &config(), 0),
            ["INIT_REPORT Init Duration: 1000.00 ms\tPhase: invoke\tStatus: timeout"]
        );
        let events = telemetry(&timeout, &config(), 0);
        assert_eq!(events[0].record["phase"], "invoke");
    }
}
