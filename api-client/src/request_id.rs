//! Request ids travel in URL paths (`/runtime/invocation/{id}/response`), so an id
//! is checked before it is put there: an id like `../init/error` or `a%2Fb` must
//! never be able to change which endpoint a request reaches.

use std::fmt;

/// The longest request id accepted. Lambda's are 36-character UUIDs, but any id of safe
/// characters is legal; the bound is the longest reply head the client reads (64 KiB),
/// which no id can outgrow anyway.
pub const MAX_REQUEST_ID_LEN: usize = crate::http1::MAX_HEAD;

/// A request id that cannot be used in a URL path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRequestId {
    id: String,
}

impl fmt::Display for InvalidRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request id {:?} is not usable in a URL path (allowed: 1 to {MAX_REQUEST_ID_LEN} of A-Z a-z 0-9 - _ . :, and no \"..\")",
            self.id
        )
    }
}

impl std::error::Error for InvalidRequestId {}

/// Checks that `id` only holds characters a request id can hold.
///
/// ```
/// use ironlambda_api_client::validate_request_id;
/// assert!(validate_request_id("8476a536-e9f4-11e8-9739-2dfe598c3fcd").is_ok());
/// assert!(validate_request_id("../init/error").is_err());
/// ```
pub fn validate_request_id(id: &str) -> Result<(), InvalidRequestId> {
    let ok = !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        && !id.contains("..");
    if ok {
        Ok(())
    } else {
        Err(InvalidRequestId { id: id.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_table() {
        let long_ok = "a".repeat(MAX_REQUEST_ID_LEN);
        let too_long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        let longer_than_a_uuid = format!("{}-{}", "b".repeat(150), "c".repeat(60));
        let cases: &[(&str, bool)] = &[
            (&longer_than_a_uuid, true),
            ("8476a536-e9f4-11e8-9739-2dfe598c3fcd", true),
            ("ABC_def-123", true),
            ("req.1", true),
            ("arn:ish:id", true),
            (&long_ok, true),
            ("", false),
            (&too_long, false),
            ("a/b", false),
            ("..", false),
            ("a..b", false),
            ("a%2Fb", false),
            ("a?x=1", false),
            ("a#frag", false),
            ("a b", false),
            ("a\tb", false),
            ("a\nb", false),
            ("a\r\nHost: evil", false),
            ("a\0b", false),
            ("a\\b", false),
            ("é", false),
        ];
        for (id, ok) in cases {
            assert_eq!(validate_request_id(id).is_ok(), *ok, "{id:?}");
        }
    }
}
