//! Typed answers of the Lambda APIs that are not success.

use std::fmt;

use http::StatusCode;

use crate::wire::ApiErrorBody;

/// A call to a Lambda API that did not succeed.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request id is unknown or stale (`InvalidRequestID`), or the request was malformed.
    BadRequest(ApiErrorBody),
    /// 403: the call is not allowed in the current state (`InvalidStateTransition`).
    Forbidden(ApiErrorBody),
    /// 404: the route does not exist (e.g. extensions disabled).
    NotFound(ApiErrorBody),
    /// 410: the invocation already timed out (`InvokeTimeout`, Managed Instances).
    Gone(ApiErrorBody),
    /// 413: the body exceeded the payload limit (`RequestEntityTooLarge`).
    PayloadTooLarge(ApiErrorBody),
    /// 5xx: the container is in trouble; the runtime should exit.
    Server(StatusCode, ApiErrorBody),
    /// Any other unexpected status.
    Unexpected(StatusCode, ApiErrorBody),
    /// The request never got an answer: connect, write or read failed.
    Transport(TransportError),
}

/// A failure below HTTP: connecting, writing the request or reading the reply.
#[derive(Debug)]
pub struct TransportError {
    pub(crate) context: &'static str,
    pub(crate) source: Box<dyn std::error::Error + Send + Sync>,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

impl ApiError {
    /// Maps a non-success status and its body to a typed error. A body that is not the
    /// API's JSON error shape is kept as the message.
    pub fn from_status(status: StatusCode, body: &[u8]) -> Self {
        let parsed = serde_json::from_slice::<ApiErrorBody>(body).unwrap_or_else(|_| {
            ApiErrorBody::new(
                status.canonical_reason().unwrap_or("Unknown"),
                String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned(),
            )
        });
        match status.as_u16() {
            400 => ApiError::BadRequest(parsed),
            403 => ApiError::Forbidden(parsed),
            404 => ApiError::NotFound(parsed),
            410 => ApiError::Gone(parsed),
            413 => ApiError::PayloadTooLarge(parsed),
            500..=599 => ApiError::Server(status, parsed),
            _ => ApiError::Unexpected(status, parsed),
        }
    }

    /// The HTTP status, when the API answered at all.
    pub fn status(&self) -> Option<StatusCode> {
        Some(match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Server(s, _) | ApiError::Unexpected(s, _) => *s,
            ApiError::Transport(_) => return None,
        })
    }

    /// The API's error body, when it answered.
    pub fn body(&self) -> Option<&ApiErrorBody> {
        match self {
            ApiError::BadRequest(b)
            | ApiError::Forbidden(b)
            | ApiError::NotFound(b)
            | ApiError::Gone(b)
            | ApiError::PayloadTooLarge(b)
            | ApiError::Server(_, b)
            | ApiError::Unexpected(_, b) => Some(b),
            ApiError::Transport(_) => None,
        }
    }

    /// True for answers about one invocation (400, 403, 410, 413) after which the
    /// runtime should simply go on to the next event (edge-cases A11–A14).
    pub fn is_per_invocation(&self) -> bool {
        matches!(
            self,
            ApiError::BadRequest(_)
                | ApiError::Forbidden(_)
                | ApiError::Gone(_)
                | ApiError::PayloadTooLarge(_)
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status(), self.body()) {
            (Some(status), Some(body)) => write!(
                f,
                "Lambda API answered {status}: {}: {}",
                body.error_type, body.error_message
            ),
            _ => match self {
                ApiError::Transport(t) => write!(f, "Lambda API unreachable: {t}"),
                _ => write!(f, "Lambda API error"),
            },
        }
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Transport(t) => Some(t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_types() {
        let body = br#"{"errorType":"InvalidRequestID","errorMessage":"Invalid request ID"}"#;
        let cases = [
            (400, "BadRequest", true),
            (403, "Forbidden", true),
            (404, "NotFound", false),
            (410, "Gone", true),
            (413, "PayloadTooLarge", true),
            (500, "Server", false),
            (503, "Server", false),
            (418, "Unexpected", false),
        ];
        for (code, variant, per_invocation) in cases {
            let e = ApiError::from_status(StatusCode::from_u16(code).unwrap(), body);
            assert!(format!("{e:?}").starts_with(variant), "{code}: {e:?}");
            assert_eq!(e.is_per_invocation(), per_invocation, "{code}");
            assert_eq!(e.status().unwrap().as_u16(), code);
            assert_eq!(e.body().unwrap().error_type, "InvalidRequestID");
        }
    }

    #[test]
    fn non_json_bodies_become_the_message() {
        let e = ApiError::from_status(StatusCode::INTERNAL_SERVER_ERROR, b"oops");
        assert_eq!(e.body().unwrap().error_message, "oops");
        assert!(e.to_string().contains("500"), "{e}");
    }
}
