//! Where the emulator's output goes: the lines Lambda would write to CloudWatch (the
//! function's output, START/END/REPORT), echoed to stdout and/or kept for tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ironlambda_api_client::telemetry::{TelemetryEvent, TelemetryType};
use serde_json::Value;
use tokio::sync::Notify;

use crate::telemetry::TelemetryHub;

/// Who printed a line.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// The runtime process.
    Function,
    /// An external extension, by name.
    Extension(Arc<str>),
}

/// The emulator's log: every line the function printed plus the platform's lines.
#[derive(Clone, Debug)]
pub struct Logs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    echo: bool,
    telemetry: Arc<TelemetryHub>,
    captured: Mutex<Vec<String>>,
    added: Notify,
}

/// At most this many lines are kept in memory; older ones are dropped first.
const MAX_KEPT: usize = 10_000;

impl Logs {
    pub(crate) fn new(echo: bool, telemetry: Arc<TelemetryHub>) -> Self {
        Logs {
            inner: Arc::new(Inner {
                echo,
                telemetry,
                captured: Mutex::new(Vec::new()),
                added: Notify::new(),
            }),
        }
    }

    /// Adds one line.
    pub(crate) fn line(&self, line: impl Into<String>) {
        let line = line.into();
        if self.inner.echo {
            println!("{line}");
        }
        let mut kept = self
            .inner
            .captured
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if kept.len() >= MAX_KEPT {
            kept.drain(..MAX_KEPT / 2);
        }
        kept.push(line);
        drop(kept);
        self.inner.added.notify_waiters();
    }

    /// A line a process printed: kept (extension lines labelled `[name]`) and published to
    /// telemetry subscribers as a `function` or `extension` record.
    pub(crate) fn output(&self, source: &Source, line: &str) {
        // A line in Lambda's JSON log format is delivered as an object, other lines as text.
        let record = match line.starts_with('{') {
            true => serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_owned())),
            false => Value::String(line.to_owned()),
        };
        let (kind, category) = match source {
            Source::Function => {
                self.line(line);
                ("function", TelemetryType::Function)
            }
            Source::Extension(name) => {
                self.line(format!("[{name}] {line}"));
                ("extension", TelemetryType::Extension)
            }
        };
        self.inner
            .telemetry
            .publish(category, TelemetryEvent::now(kind, record));
    }

    /// A copy of the lines kept so far.
    pub fn lines(&self) -> Vec<String> {
        self.inner
            .captured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until a line satisfies `pred`, for at most `limit`; returns that line.
    pub async fn wait_for(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let wait = async {
            loop {
                let notified = self.inner.added.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(found) = self.lines().into_iter().find(|l| pred(l)) {
                    return found;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.ok()
    }
}
