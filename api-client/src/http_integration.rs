//! HTTP functions on the wire: the rules a function and its HTTP trigger (a Function URL,
//! API Gateway) share, so the runtime side and the emulator's front door cannot drift.
//!
//! A streamed HTTP response is sent under [`CONTENT_TYPE`]: a JSON prelude
//! (`{"statusCode","headers","cookies"}`), then [`PRELUDE_SEPARATOR`], then the body as
//! it is produced (protocol.md §1.3). Bodies travel inside JSON events and responses as
//! text when their content type is textual ([`is_text_content_type`]), else as base64.

use std::borrow::Cow;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The content type that tells Lambda a prelude precedes the body.
pub const CONTENT_TYPE: &str = "application/vnd.awslambda.http-integration-response";

/// What ends the prelude: 8 NUL bytes (the prelude's JSON never holds a NUL).
pub const PRELUDE_SEPARATOR: [u8; 8] = [0; 8];

/// The head of an HTTP response as a function writes it (payload format 2.0): the whole
/// of a streamed response's prelude, and the `statusCode`, `headers` and `cookies` of a
/// buffered one. The runtime writes it and the emulator's Function URL reads it, so the
/// two agree by construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseHead {
    /// The HTTP status.
    pub status_code: u16,
    /// Header names and values, in order. On the wire they are a JSON object: values of a
    /// name given twice (in any case) are joined by `, `; reading keeps the object's order.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "header_object",
        deserialize_with = "header_pairs"
    )]
    pub headers: Vec<(String, String)>,
    /// `Set-Cookie` values, one per cookie (a JSON object cannot repeat a name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cookies: Vec<String>,
}

impl ResponseHead {
    /// A head with this status and no headers or cookies.
    pub fn new(status_code: u16) -> Self {
        ResponseHead {
            status_code,
            headers: Vec::new(),
            cookies: Vec::new(),
        }
    }
}

/// Headers as a JSON object; a repeated name keeps its values joined by `, `.
fn header_object<S: Serializer>(
    headers: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serialize_joined_headers(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), Cow::Borrowed(value.as_str()))),
        serializer,
    )
}

/// Writes header `(name, value)` pairs as the single-value `headers` object of payload
/// format 2.0 (and of an ALB target group without multi-value headers): a name given more
/// than once, in any case, keeps its first spelling and its values joined by `, ` in
/// order. `Set-Cookie` is the caller's business: its values cannot be joined so.
pub fn serialize_joined_headers<'a, S: Serializer>(
    pairs: impl IntoIterator<Item = (&'a str, Cow<'a, str>)>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut joined: Vec<(&str, Cow<'_, str>)> = Vec::new();
    for (name, value) in pairs {
        match joined
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => {
                let v = v.to_mut();
                v.push_str(", ");
                v.push_str(&value);
            }
            None => joined.push((name, value)),
        }
    }
    serializer.collect_map(joined)
}

/// A JSON object of header names and string values, in its order.
fn header_pairs<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, String)>, D::Error> {
    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of header names and string values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
            while let Some(pair) = map.next_entry()? {
                pairs.push(pair);
            }
            Ok(pairs)
        }
    }
    deserializer.deserialize_map(Pairs)
}

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
    fn a_head_joins_a_repeated_header_and_reads_back_in_order() {
        let head = ResponseHead {
            status_code: 201,
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("x-a".into(), "1".into()),
                ("X-A".into(), "2".into()),
            ],
            cookies: vec!["s=1; Secure".into()],
        };
        let json = serde_json::to_string(&head).unwrap();
        assert_eq!(
            json,
            r#"{"statusCode":201,"headers":{"Content-Type":"text/plain","x-a":"1, 2"},"cookies":["s=1; Secure"]}"#
        );
        let read: ResponseHead = serde_json::from_str(&json).unwrap();
        assert_eq!(read.headers[1], ("x-a".to_owned(), "1, 2".to_owned()));
        assert_eq!(read.cookies, head.cookies);
    }

    #[test]
    fn a_bare_status_is_a_whole_head_and_other_shapes_are_refused() {
        let head: ResponseHead = serde_json::from_str(r#"{"statusCode":204}"#).unwrap();
        assert_eq!(head, ResponseHead::new(204));
        assert_eq!(
            serde_json::to_string(&head).unwrap(),
            r#"{"statusCode":204}"#
        );
        for bad in [
            r#"{"headers":{}}"#,
            r#"{"statusCode":200,"headers":{"a":1}}"#,
            r#"{"statusCode":70000}"#,
        ] {
            assert!(serde_json::from_str::<ResponseHead>(bad).is_err(), "{bad}");
        }
    }

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
