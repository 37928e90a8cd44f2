//! Bodies and limits shared by clients and the emulator, so the two cannot drift.

use serde::{Deserialize, Serialize};

/// Largest buffered invoke payload or `/response` body the Runtime API accepts:
/// 6 MiB + 100 bytes (protocol.md §1.9).
pub const MAX_RESPONSE_PAYLOAD: usize = 6 * 1024 * 1024 + 100;

/// Largest streamed response (200 MiB since July 2025, protocol.md §1.3).
pub const MAX_STREAMED_RESPONSE: usize = 200 * 1024 * 1024;

/// Largest synchronous request body the Invoke API accepts (6 MiB).
pub const MAX_INVOKE_PAYLOAD: usize = 6 * 1024 * 1024;

/// Largest asynchronous (`Event`) invoke payload (1 MiB since October 2025).
pub const MAX_ASYNC_INVOKE_PAYLOAD: usize = 1024 * 1024;

/// Largest body accepted on the Extensions, Telemetry and Logs APIs, and on `/error` and
/// `/init/error` in Lambda Managed Instances (1 MiB, protocol.md §1.9).
pub const MAX_EXTENSIONS_API_BODY: usize = 1024 * 1024;

/// The error object a runtime posts to `/error` and `/init/error`, and that the
/// caller receives for a function error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRequest {
    /// Human-readable message.
    pub error_message: String,
    /// Short error type, e.g. `ParseIntError` or `Runtime.ExitError`.
    pub error_type: String,
    /// Stack frames, often empty.
    #[serde(default)]
    pub stack_trace: Vec<String>,
}

/// The error body of the Lambda APIs themselves (`{"errorType","errorMessage"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiErrorBody {
    /// Machine-readable error type, e.g. `InvalidRequestID`.
    pub error_type: String,
    /// Human-readable message.
    pub error_message: String,
}

impl ApiErrorBody {
    /// Builds the body.
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        ApiErrorBody {
            error_type: error_type.into(),
            error_message: error_message.into(),
        }
    }

    /// The JSON bytes of this body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Body of a `202 Accepted` reply from the Runtime and Extensions APIs.
pub const STATUS_OK_BODY: &[u8] = br#"{"status":"OK"}"#;

/// The 400 reply to an unknown or stale request id (edge-cases A11).
pub fn invalid_request_id() -> ApiErrorBody {
    ApiErrorBody::new("InvalidRequestID", "Invalid request ID")
}

/// The 403 reply to a call the runtime's state does not allow (protocol.md §1.7).
pub fn invalid_state_transition(from: &str, to: &str) -> ApiErrorBody {
    ApiErrorBody::new(
        "InvalidStateTransition",
        format!(
            "State transition from {from} to {to} failed for runtime. Error: State transition is not allowed"
        ),
    )
}

/// The 410 reply to a result that came after its invocation timed out (Managed
/// Instances, edge-cases A13).
pub fn invoke_timeout() -> ApiErrorBody {
    ApiErrorBody::new("InvokeTimeout", "Invoke timeout")
}

/// The 413 reply to a `/response` over [`MAX_RESPONSE_PAYLOAD`].
pub fn request_entity_too_large() -> ApiErrorBody {
    ApiErrorBody::new(
        "RequestEntityTooLarge",
        format!("Exceeded maximum allowed payload size ({MAX_RESPONSE_PAYLOAD} bytes)."),
    )
}

/// The 413 reply to a streamed `/response` over [`MAX_STREAMED_RESPONSE`].
pub fn streamed_response_too_large() -> ApiErrorBody {
    ApiErrorBody::new(
        "RequestEntityTooLarge",
        format!("Exceeded maximum allowed payload size ({MAX_STREAMED_RESPONSE} bytes)."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_request_round_trips_in_lambda_spelling() {
        let e = ErrorRequest {
            error_message: "boom".into(),
            error_type: "ParseIntError".into(),
            stack_trace: vec![],
        };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"errorMessage":"boom","errorType":"ParseIntError","stackTrace":[]}"#
        );
        let back: ErrorRequest =
            serde_json::from_str(r#"{"errorMessage":"m","errorType":"t"}"#).unwrap();
        assert!(back.stack_trace.is_empty());
    }

    #[test]
    fn limits_match_production() {
        assert_eq!(MAX_RESPONSE_PAYLOAD, 6_291_556);
        assert_eq!(MAX_INVOKE_PAYLOAD, 6_291_456);
        assert!(
            String::from_utf8(request_entity_too_large().to_json())
                .unwrap()
                .contains("6291556 bytes")
        );
    }
}
