//! HTTP functions on the wire: the rules a function and its HTTP trigger (a Function URL,
//! API Gateway) share, so the runtime side and the emulator's front door cannot drift.
//!
//! A streamed HTTP response is sent under [`CONTENT_TYPE`]: a JSON prelude
//! (`{"statusCode","headers","cookies"}`), then [`PRELUDE_SEPARATOR`], then the body as
//! it is produced (protocol.md §1.3). Bodies travel inside JSON events and responses as
//! text when their content type is textual ([`is_text_content_type`]), else as base64.

/// The content type that tells Lambda a prelude precedes the body.
pub const CONTENT_TYPE: &str = "application/vnd.awslambda.http-integration-response";

/// What ends the prelude: 8 NUL bytes (the prelude's JSON never holds a NUL).
pub const PRELUDE_SEPARATOR: [u8; 8] = [0; 8];

/// Whether a body of this content type is text (sent as a JSON string) rather than
/// binary (sent base64): `text/*`, JSON, XML, JavaScript, forms, YAML, GraphQL, and any
/// type that names a charset.
pub fn is_text_content_type(content_type: &str) -> bool {
    let lower = content_type.trim().to_ascii_lowercase();
    let essence = lower.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence,
            "application/json"
                | "application/javascript"
                | "application/ecmascript"
                | "application/xml"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
                | "application/yaml"
                | "application/x-ndjson"
        )
        || lower.contains("charset=")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textual_types_are_text_and_others_binary() {
        for text in [
            "text/html",
            "Application/JSON",
            "application/problem+json",
            "image/svg+xml",
            "application/octet-stream; charset=utf-8",
        ] {
            assert!(is_text_content_type(text), "{text}");
        }
        for binary in [
            "image/png",
            "application/octet-stream",
            "application/pdf",
            "",
        ] {
            assert!(!is_text_content_type(binary), "{binary}");
        }
    }
}
