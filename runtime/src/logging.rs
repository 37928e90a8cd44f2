//! The default `tracing` subscriber, configured the way Lambda's settings ask
//! (protocol.md §7): `AWS_LAMBDA_LOG_FORMAT` picks text or JSON, `RUST_LOG` (as
//! `target=level,…` directives) or else `AWS_LAMBDA_LOG_LEVEL` picks the level.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

/// The output format Lambda asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Plain text lines (the default).
    Text,
    /// One JSON object per line.
    Json,
}

/// The format and filter read from the environment through `lookup`.
pub(crate) fn settings(lookup: impl Fn(&str) -> Option<String>) -> (LogFormat, Targets) {
    let format = match lookup("AWS_LAMBDA_LOG_FORMAT") {
        Some(f) if f.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let from_rust_log = lookup("RUST_LOG").and_then(|v| v.parse::<Targets>().ok());
    let filter = from_rust_log.unwrap_or_else(|| {
        let level = match lookup("AWS_LAMBDA_LOG_LEVEL")
            .unwrap_or_default()
            .trim()
            .to_ascii_uppercase()
            .as_str()
        {
            "TRACE" => LevelFilter::TRACE,
            "DEBUG" => LevelFilter::DEBUG,
            "WARN" => LevelFilter::WARN,
            "ERROR" | "FATAL" => LevelFilter::ERROR,
            _ => LevelFilter::INFO,
        };
        Targets::new().with_default(level)
    });
    (format, filter)
}

/// Installs the default subscriber unless the program already installed one.
///
/// Text lines carry the invocation span (`invocation{requestId=…}`), JSON lines carry it
/// as `"span":{"requestId":…}`, so every line logged during an invocation names it.
pub fn init_default_subscriber() {
    let (format, filter) = settings(|k| std::env::var(k).ok());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .with_target(false)
        .with_max_level(LevelFilter::TRACE);
    let result = match format {
        LogFormat::Text => {
            tracing::subscriber::set_global_default(builder.without_time().finish().with(filter))
        }
        LogFormat::Json => tracing::subscriber::set_global_default(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish()
                .with(filter),
        ),
    };
    // An error only means the program installed its own subscriber first: keep it.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn format_and_level_follow_lambda_settings() {
        let (f, t) = settings(lookup(&[]));
        assert_eq!(f, LogFormat::Text);
        assert!(t.would_enable("x", &Level::INFO) && !t.would_enable("x", &Level::DEBUG));

        let (f, t) = settings(lookup(&[
            ("AWS_LAMBDA_LOG_FORMAT", "json"),
            ("AWS_LAMBDA_LOG_LEVEL", "debug"),
        ]));
        assert_eq!(f, LogFormat::Json);
        assert!(t.would_enable("x", &Level::DEBUG));

        let (_, t) = settings(lookup(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]));
        assert!(!t.would_enable("x", &Level::WARN) && t.would_enable("x", &Level::ERROR));

        let (_, t) = settings(lookup(&[
            ("AWS_LAMBDA_LOG_LEVEL", "ERROR"),
            ("RUST_LOG", "warn,my_fn=trace"),
        ]));
        assert!(t.would_enable("my_fn", &Level::TRACE));
        assert!(t.would_enable("other", &Level::WARN) && !t.would_enable("other", &Level::INFO));
    }
}
