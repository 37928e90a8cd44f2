//! `cargo ironlambda invoke`: one invocation of a function on a running emulator, with
//! the answer printed for a reader.

use std::io::IsTerminal;
use std::net::SocketAddr;

use ironlambda_api_client::headers;
use ironlambda_emulator::{InvokeResponse, invoke_request, send};

/// Invokes `function` at `addr` with `payload`; returns the text to print and whether the
/// function failed.
pub async fn invoke(
    addr: SocketAddr,
    function: &str,
    payload: String,
) -> Result<(String, bool), String> {
    let answer = send(addr, invoke_request(addr, function, payload))
        .await
        .map_err(|e| {
            format!("cannot reach an emulator at {addr} ({e}): start one with `cargo ironlambda watch` (or pass --port)")
        })?;
    let color = std::io::stdout().is_terminal();
    Ok((
        render(&answer, color),
        answer.function_error().is_some() || !answer.status.is_success(),
    ))
}

/// The answer as a reader wants it: pretty JSON when it is JSON; a function error (or an
/// API refusal) on a first line naming its type, in red on a terminal.
pub fn render(answer: &InvokeResponse, color: bool) -> String {
    let body = match serde_json::from_slice::<serde_json::Value>(&answer.body) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(&answer.body).into_owned(),
    };
    let failure = if answer.function_error().is_some() {
        let json = answer.json().unwrap_or_default();
        Some(format!(
            "function error {}: {}",
            json["errorType"].as_str().unwrap_or("(no errorType)"),
            json["errorMessage"].as_str().unwrap_or("")
        ))
    } else if !answer.status.is_success() {
        let kind = answer
            .headers
            .get(headers::AMZN_ERROR_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("error");
        Some(format!("{} {kind}", answer.status.as_u16()))
    } else {
        None
    };
    match failure {
        Some(line) if color => format!("\x1b[31m{line}\x1b[0m\n{body}"),
        Some(line) => format!("{line}\n{body}"),
        None => body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue, StatusCode};

    fn answer(status: StatusCode, error: bool, body: &'static str) -> InvokeResponse {
        let mut fields = HeaderMap::new();
        if error {
            fields.insert(
                headers::AMZ_FUNCTION_ERROR,
                HeaderValue::from_static("Unhandled"),
            );
        }
        InvokeResponse {
            status,
            headers: fields,
            body: body.into(),
        }
    }

    #[test]
    fn a_success_prints_pretty_json() {
        let a = answer(StatusCode::OK, false, r#"{"message":"hi"}"#);
        assert_eq!(render(&a, false), "{\n  \"message\": \"hi\"\n}");
    }

    #[test]
    fn a_function_error_names_its_type_in_red_on_a_terminal() {
        let a = answer(
            StatusCode::OK,
            true,
            r#"{"errorType":"OutOfStock","errorMessage":"no tea"}"#,
        );
        assert!(render(&a, false).starts_with("function error OutOfStock: no tea\n"));
        assert!(render(&a, true).starts_with("\x1b[31mfunction error OutOfStock: no tea\x1b[0m"));
    }
}
