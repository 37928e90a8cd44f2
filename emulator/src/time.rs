//! Timestamps in the format Lambda prints (`2024-01-31T12:34:56.789Z`).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::process::civil_from_days;

/// The current UTC time as RFC 3339 with milliseconds.
pub(crate) fn rfc3339_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}
