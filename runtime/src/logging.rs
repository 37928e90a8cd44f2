//! The default `tracing` subscriber, configured the way Lambda's settings ask
//! (protocol.md §7): `AWS_LAMBDA_LOG_FORMAT` picks text or JSON, and the level comes from
//! `AWS_LAMBDA_LOG_LEVEL` (Lambda's logging controls) or, when that is not set, from
//! `RUST_LOG` (as `target=level,…` directives), else INFO.
//!
//! Lambda's setting wins over `RUST_LOG`: it is what the function's operator chose in the
//! console, and a `RUST_LOG` left in the environment must not override it. When both are
//! set, the runtime says once, on its first line, that `RUST_LOG` was ignored.

mod subscriber;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::instrument::Instrument;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;

/// Whether our subscriber is the one installed: it names the invocation from
/// [`REQUEST_ID`], so no span is needed. Any other subscriber (the program's own) gets an
/// `invocation{requestId}` span per invocation.
static OURS_INSTALLED: AtomicBool = AtomicBool::new(false);

tokio::task_local! {
    /// The request id of the invocation this task is handling, for our lines.
    static REQUEST_ID: String;
}

/// The request id of the invocation the current task is handling.
fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `invocation` so that every line it logs names `request_id`: inside a task-local
/// our lines read (creating a span costs a rendered field set, a table entry and an enter
/// and exit on every poll), or else inside an `invocation` span.
pub(crate) async fn in_invocation<F: Future>(request_id: &str, invocation: F) -> F::Output {
    // One wrapping for both cases (a disabled span costs next to nothing): two would
    // compile the whole invocation twice.
    let span = if OURS_INSTALLED.load(Ordering::Relaxed) {
        tracing::Span::none()
    } else {
        // An ERROR-level span is enabled whatever level Lambda's controls set, so every
        // line logged in it, WARN and ERROR included, names the invocation.
        tracing::error_span!("invocation", requestId = request_id)
    };
    REQUEST_ID
        .scope(request_id.to_owned(), invocation)
        .instrument(span)
        .await
}

/// The output format Lambda asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Plain text lines (the default).
    Text,
    /// One JSON object per line.
    Json,
}

/// The logging settings read from the environment.
pub(crate) struct Settings {
    pub(crate) format: LogFormat,
    pub(crate) filter: Targets,
    /// `RUST_LOG` was set but `AWS_LAMBDA_LOG_LEVEL` decided: say so.
    pub(crate) rust_log_ignored: Option<String>,
}

/// The format and filter read from the environment through `lookup`.
pub(crate) fn settings(lookup: impl Fn(&str) -> Option<String>) -> Settings {
    let format = match lookup("AWS_LAMBDA_LOG_FORMAT") {
        Some(f) if f.trim().eq_ignore_ascii_case("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let lambda_level = lookup("AWS_LAMBDA_LOG_LEVEL").and_then(|v| {
        Some(match v.trim().to_ascii_uppercase().as_str() {
            "TRACE" => LevelFilter::TRACE,
            "DEBUG" => LevelFilter::DEBUG,
            "INFO" => LevelFilter::INFO,
            "WARN" => LevelFilter::WARN,
            "ERROR" | "FATAL" => LevelFilter::ERROR,
            _ => return None,
        })
    });
    let rust_log = lookup("RUST_LOG").filter(|v| !v.trim().is_empty());
    let (filter, rust_log_ignored) = match (lambda_level, rust_log) {
        (Some(level), ignored) => (Targets::new().with_default(level), ignored),
        (None, Some(directives)) => (
            directives
                .parse::<Targets>()
                .unwrap_or_else(|_| Targets::new().with_default(LevelFilter::INFO)),
            None,
        ),
        (None, None) => (Targets::new().with_default(LevelFilter::INFO), None),
    };
    Settings {
        format,
        filter,
        rust_log_ignored,
    }
}

/// Installs the default subscriber unless the program already installed one.
///
/// Text lines start with the invocation (` INFO invocation{requestId="…"}: message`), JSON
/// lines carry it as `"requestId"` (as Lambda's managed runtimes write it), so every line
/// logged during an invocation names it. A program that wants other lines (tracing-
/// subscriber's `fmt`, OpenTelemetry…) installs its own subscriber first; the runtime then
/// puts each invocation in an `invocation{requestId}` span instead.
pub fn init_default_subscriber() {
    let Settings {
        format,
        filter,
        rust_log_ignored,
    } = settings(|k| std::env::var(k).ok());
    let installed =
        tracing::subscriber::set_global_default(subscriber::LambdaSubscriber::new(format, filter))
            .is_ok();
    OURS_INSTALLED.store(installed, Ordering::Relaxed);
    // Not installed only means the program installed its own subscriber first: keep it.
    if installed {
        if let Some(directives) = rust_log_ignored {
            tracing::warn!(
                "RUST_LOG={directives:?} is ignored: AWS_LAMBDA_LOG_LEVEL (Lambda's logging controls) sets the level"
            );
        }
    }
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
        let s = settings(lookup(&[]));
        assert_eq!(s.format, LogFormat::Text);
        assert!(
            s.filter.would_enable("x", &Level::INFO) && !s.filter.would_enable("x", &Level::DEBUG)
        );

        let s = settings(lookup(&[
            ("AWS_LAMBDA_LOG_FORMAT", "json"),
            ("AWS_LAMBDA_LOG_LEVEL", "debug"),
        ]));
        assert_eq!(s.format, LogFormat::Json);
        assert!(s.filter.would_enable("x", &Level::DEBUG));

        let s = settings(lookup(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]));
        assert!(
            !s.filter.would_enable("x", &Level::WARN) && s.filter.would_enable("x", &Level::ERROR)
        );
    }

    #[test]
    fn rust_log_applies_only_when_lambda_sets_no_level() {
        let s = settings(lookup(&[("RUST_LOG", "warn,my_fn=trace")]));
        assert!(s.filter.would_enable("my_fn", &Level::TRACE));
        assert!(
            s.filter.would_enable("other", &Level::WARN)
                && !s.filter.would_enable("other", &Level::INFO)
        );
        assert_eq!(s.rust_log_ignored, None);
    }

    #[test]
    fn lambda_log_level_wins_over_rust_log_and_says_so() {
        let s = settings(lookup(&[
            ("AWS_LAMBDA_LOG_LEVEL", "ERROR"),
            ("RUST_LOG", "trace"),
        ]));
        assert!(!s.filter.would_enable("my_fn", &Level::WARN));
        assert!(s.filter.would_enable("my_fn", &Level::ERROR));
        assert_eq!(s.rust_log_ignored.as_deref(), Some("trace"));
    }
}
