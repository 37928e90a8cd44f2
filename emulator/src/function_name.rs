//! The `{FunctionName}` of an Invoke API path, read as Lambda reads it. The forms the API
//! documents, each with an optional `:qualifier` (`$LATEST`, a version or an alias):
//!
//! - a name: `my-function`
//! - a partial ARN: `123456789012:function:my-function`
//! - a full ARN: `arn:aws:lambda:us-west-2:123456789012:function:my-function`
//!
//! The path segment is percent-decoded first (SDKs encode the `:` of an ARN as `%3A`).
//! Anything else is not a function name at all, and Lambda answers it with a 400
//! `ValidationException` rather than a 404.

/// A function named in a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunctionRef {
    /// The function's name, without account, region or qualifier.
    pub(crate) name: String,
    /// `$LATEST`, a version number or an alias, when one was given.
    pub(crate) qualifier: Option<String>,
}

impl FunctionRef {
    /// Whether this names the unpublished function: no qualifier, `$LATEST`, or a version
    /// number (the emulator runs one build, so every version is that build).
    pub(crate) fn is_latest_or_version(&self) -> bool {
        match self.qualifier.as_deref() {
            None | Some("$LATEST") => true,
            Some(q) => q.bytes().all(|b| b.is_ascii_digit()),
        }
    }
}

/// The longest function name Lambda allows.
const MAX_NAME: usize = 64;
/// The longest qualifier Lambda allows (alias names).
const MAX_QUALIFIER: usize = 128;

/// Reads the raw (still percent-encoded) path segment.
pub(crate) fn parse(raw: &str) -> Result<FunctionRef, String> {
    let invalid = || {
        format!(
            "1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: Member must be a function name, a partial ARN (ACCOUNT:function:NAME) or a full ARN, each with an optional :QUALIFIER"
        )
    };
    let decoded = percent_decode(raw).ok_or_else(invalid)?;
    let parts: Vec<&str> = decoded.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(*qualifier)),
        [account, "function", name] if is_account(account) => (*name, None),
        [account, "function", name, qualifier] if is_account(account) => (*name, Some(*qualifier)),
        [
            "arn",
            partition,
            "lambda",
            region,
            account,
            "function",
            name,
            rest @ ..,
        ] if partition.starts_with("aws")
            && is_region(region)
            && is_account(account)
            && rest.len() <= 1 =>
        {
            (*name, rest.first().copied())
        }
        _ => return Err(invalid()),
    };
    let name_ok = is_valid_name(name);
    let qualifier_ok = qualifier.is_none_or(|q| {
        q == "$LATEST"
            || ((1..=MAX_QUALIFIER).contains(&q.len())
                && q.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    });
    if !name_ok || !qualifier_ok {
        return Err(invalid());
    }
    Ok(FunctionRef {
        name: name.to_owned(),
        qualifier: qualifier.map(str::to_owned),
    })
}

/// Whether `name` is a function name Lambda allows: 1 to 64 letters, digits, `-` and `_`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `us-east-1`, `us-gov-west-1`, `eu-central-2`…: lower-case words and a number.
fn is_region(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or_default();
    let last = s.rsplit('-').next().unwrap_or_default();
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_digit())
        && s.split('-').count() >= 3
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `%XX` escapes decoded; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(raw: &str) -> Option<(String, Option<String>)> {
        parse(raw).ok().map(|f| (f.name, f.qualifier))
    }

    #[test]
    fn every_documented_form_is_read() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("hello", "hello", None),
            ("hello:$LATEST", "hello", Some("$LATEST")),
            ("hello:3", "hello", Some("3")),
            ("hello:live", "hello", Some("live")),
            ("123456789012:function:hello", "hello", None),
            ("123456789012:function:hello:7", "hello", Some("7")),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:hello",
                "hello",
                None,
            ),
            (
                "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:hello:$LATEST",
                "hello",
                Some("$LATEST"),
            ),
            (
                "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Ahello",
                "hello",
                None,
            ),
            ("hello%3A%24LATEST", "hello", Some("$LATEST")),
            ("my_fn-2", "my_fn-2", None),
        ];
        for (raw, name, qualifier) in cases {
            assert_eq!(
                named(raw),
                Some(((*name).to_owned(), qualifier.map(str::to_owned))),
                "{raw}"
            );
        }
    }

    #[test]
    fn anything_else_is_not_a_function_name() {
        let too_long = "a".repeat(65);
        for raw in [
            "",
            "evil;junk:function",
            "a b",
            "a/b",
            "hello:",
            ":hello",
            "hello:1:2",
            "12345:function:hello",
            "123456789012:func:hello",
            "arn:aws:s3:us-east-1:123456789012:function:hello",
            "arn:aws:lambda:nowhere:123456789012:function:hello",
            "arn:aws:lambda:us-east-1:123456789012:function:hello:1:2",
            "hello%3",
            "hello%zz",
            "hello%FF",
            too_long.as_str(),
        ] {
            assert_eq!(named(raw), None, "{raw:?}");
            assert!(parse(raw).unwrap_err().contains("validation error"));
        }
    }

    #[test]
    fn versions_and_latest_name_the_build_and_aliases_do_not() {
        let latest = |raw: &str| parse(raw).unwrap().is_latest_or_version();
        assert!(latest("hello") && latest("hello:$LATEST") && latest("hello:12"));
        assert!(!latest("hello:live"));
    }
}
