//! An external extension: ship it in a layer as `extensions/telemetry-summary`. It prints
//! a line when each invocation starts, a one-line summary of each invocation from the
//! Telemetry API's `platform.report`, and a last line on SHUTDOWN.

use ironlambda_extension::{
    Buffering, Error, Extension, TelemetryConfig, TelemetryRecord, TelemetryType,
};

/// `summary <id>: 12.30 ms (billed 13 ms), 21 of 128 MB, success`.
fn summarize(event: &ironlambda_extension::TelemetryEvent) -> Option<String> {
    let TelemetryRecord::Report(record, metrics) = event.parse() else {
        return None;
    };
    Some(format!(
        "summary {}: {:.2} ms (billed {} ms), {} of {} MB, {}",
        record.request_id,
        metrics.duration_ms,
        metrics.billed_duration_ms,
        metrics.max_memory_used_mb,
        metrics.memory_size_mb,
        record.status.as_deref().unwrap_or("unknown"),
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Deliver often: this extension prints, it does not batch for a backend.
    let telemetry = TelemetryConfig::default()
        .types([TelemetryType::Platform])
        .buffering(Buffering {
            timeout_ms: Some(25),
            ..Buffering::default()
        });
    Extension::new()
        .on_invoke(|event| async move {
            println!("INVOKE {}", event.request_id);
            Ok(())
        })
        .on_shutdown(|event| async move {
            println!(
                "SHUTDOWN {} (deadline {} ms)",
                event.shutdown_reason, event.deadline_ms
            );
            Ok(())
        })
        .with_telemetry(telemetry, |batch| async move {
            for line in batch.iter().filter_map(summarize) {
                println!("{line}");
            }
        })
        .run()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironlambda_extension::TelemetryEvent;
    use serde_json::json;

    #[test]
    fn reports_become_one_line() {
        let report = TelemetryEvent::now(
            "platform.report",
            json!({"requestId": "abc", "status": "success",
                   "metrics": {"durationMs": 12.3, "billedDurationMs": 13, "memorySizeMB": 128, "maxMemoryUsedMB": 21}}),
        );
        assert_eq!(
            summarize(&report).unwrap(),
            "summary abc: 12.30 ms (billed 13 ms), 21 of 128 MB, success"
        );
        let start = TelemetryEvent::now("platform.start", json!({"requestId": "abc"}));
        assert_eq!(summarize(&start), None);
    }
}
