//! Where the emulator's output goes: the lines Lambda would write to CloudWatch (the
//! function's output, START/END/REPORT), echoed to stdout and/or kept for tests.

use std::sync::{Arc, Mutex};

use base64::Engine;
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
///
/// With several environments each line is tagged with its environment (`[env 2] START
/// RequestId: …`), as Lambda writes each environment to a log stream of its own.
#[derive(Clone, Debug)]
pub struct Logs {
    inner: Arc<Inner>,
    /// Where this environment's lines go as telemetry.
    telemetry: Arc<TelemetryHub>,
    /// `[hello env 2] `, when there are several functions or environments.
    tag: Option<Arc<str>>,
    /// The function logs in Lambda's JSON format (`AWS_LAMBDA_LOG_FORMAT=JSON`).
    json_format: bool,
}

#[derive(Debug)]
struct Inner {
    echo: bool,
    /// Lines carry a tag naming their function and environment.
    tagged: bool,
    captured: Mutex<Kept>,
    added: Notify,
}

/// The lines kept, and their total size.
#[derive(Debug, Default)]
struct Kept {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
}

/// At most this many lines are kept in memory; older ones are dropped first.
const MAX_KEPT: usize = 10_000;
/// At most this many bytes of lines are kept; older lines are dropped first.
const MAX_KEPT_BYTES: usize = 16 * 1024 * 1024;
/// How much of an invocation's log `LogType: Tail` returns (protocol.md §1.10).
const TAIL_BYTES: usize = 4096;

impl Logs {
    /// The log of an emulator; `tagged` when lines must say which function and
    /// environment wrote them. This handle writes untagged lines, for no environment.
    pub(crate) fn new(echo: bool, tagged: bool) -> Self {
        Logs {
            inner: Arc::new(Inner {
                echo,
                tagged,
                captured: Mutex::new(Kept::default()),
                added: Notify::new(),
            }),
            telemetry: Arc::new(TelemetryHub::default()),
            tag: None,
            json_format: false,
        }
    }

    /// The same log, written by environment `index` (from 0) of `function`, whose lines go
    /// to `telemetry`'s subscribers. The tag names the function when `several_functions`,
    /// and the environment when it has `environments` > 1.
    pub(crate) fn for_environment(
        &self,
        function: &crate::config::FunctionConfig,
        several_functions: bool,
        index: usize,
        telemetry: Arc<TelemetryHub>,
    ) -> Self {
        let label = match (several_functions, function.environments > 1) {
            (false, false) => None,
            (true, false) => Some(function.name.clone()),
            (false, true) => Some(format!("env {}", index + 1)),
            (true, true) => Some(format!("{} env {}", function.name, index + 1)),
        };
        Logs {
            inner: self.inner.clone(),
            telemetry,
            tag: label
                .filter(|_| self.inner.tagged)
                .map(|l| Arc::from(format!("[{l}] "))),
            json_format: function.env.iter().any(|(k, v)| {
                k == "AWS_LAMBDA_LOG_FORMAT" && v.trim().eq_ignore_ascii_case("json")
            }),
        }
    }

    /// Adds one line.
    pub(crate) fn line(&self, line: impl Into<String>) {
        let mut line = line.into();
        if let Some(tag) = &self.tag {
            line.insert_str(0, tag);
        }
        if self.inner.echo {
            println!("{}", printable(&line));
        }
        let mut kept = self
            .inner
            .captured
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        kept.bytes += line.len();
        kept.lines.push_back(line);
        while kept.lines.len() > MAX_KEPT || kept.bytes > MAX_KEPT_BYTES {
            let Some(old) = kept.lines.pop_front() else {
                break;
            };
            kept.bytes -= old.len();
        }
        drop(kept);
        self.inner.added.notify_waiters();
    }

    /// A line a process printed: kept (extension lines labelled `[name]`) and published to
    /// telemetry subscribers as a `function` or `extension` record.
    pub(crate) fn output(&self, source: &Source, line: &str) {
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
        if !self.telemetry.has_subscribers() {
            return;
        }
        // In Lambda's JSON log format a line that is a JSON object is delivered as that
        // object; in Text format every line is delivered as text, braces or not.
        let record = match self.json_format && line.starts_with('{') {
            true => serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_owned())),
            false => Value::String(line.to_owned()),
        };
        self.telemetry
            .publish(category, TelemetryEvent::now(kind, record));
    }

    /// A copy of the lines kept so far.
    pub fn lines(&self) -> Vec<String> {
        let kept = self
            .inner
            .captured
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        kept.lines.iter().cloned().collect()
    }

    /// The last 4 KB of invocation `request_id`'s log (from its `START` line through its
    /// `REPORT` line), base64, as `LogType: Tail` returns it. Waits for the `REPORT` line for
    /// at most `limit`, then takes what there is; `None` when the invocation logged nothing.
    pub(crate) async fn tail(&self, request_id: &str, limit: Duration) -> Option<String> {
        let report = format!("REPORT RequestId: {request_id}");
        let start = format!("START RequestId: {request_id}");
        let is = |line: &str, prefix: &str| self.untagged(line).starts_with(prefix);
        self.wait_for(limit, |l| is(l, &report)).await;
        let lines = self.lines();
        let first = lines.iter().rposition(|l| is(l, &start))?;
        let last = lines[first..]
            .iter()
            .position(|l| is(l, &report))
            .map_or(lines.len(), |i| first + i + 1);
        let mut text = lines[first..last].join("\n");
        text.push('\n');
        let cut = text.len().saturating_sub(TAIL_BYTES);
        Some(base64::engine::general_purpose::STANDARD.encode(&text.as_bytes()[cut..]))
    }

    /// `line` without its tag. (Function names hold no `]` or space, so the tag ends at the
    /// first `] `.)
    fn untagged<'a>(&self, line: &'a str) -> &'a str {
        match self.inner.tagged {
            true => line
                .strip_prefix('[')
                .and_then(|rest| rest.split_once("] "))
                .map_or(line, |(_, rest)| rest),
            false => line,
        }
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

/// `line` with its control characters written out (`\x1b`, `\r`, `\u{9b}`), so a
/// function's output cannot move the cursor, clear the screen, retitle the terminal or
/// fake a platform line with a carriage return. Tabs stay.
fn printable(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.chars().any(|c| c.is_control() && c != '\t') {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    for c in line.chars() {
        match c {
            '\t' => out.push(c),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_kept_is_bounded_in_lines_and_in_bytes() {
        let logs = Logs::new(false, false);
        for i in 0..MAX_KEPT + 5 {
            logs.line(format!("{i}"));
        }
        let lines = logs.lines();
        assert_eq!(lines.len(), MAX_KEPT);
        assert_eq!(lines[0], "5", "the oldest lines go first");
        let big = "x".repeat(256 * 1024);
        for _ in 0..100 {
            logs.line(big.clone());
        }
        let kept: usize = logs.lines().iter().map(String::len).sum();
        assert!(kept <= MAX_KEPT_BYTES, "{kept} bytes kept");
        assert!(kept > MAX_KEPT_BYTES - big.len());
    }

    #[test]
    fn control_characters_are_written_out_when_printed() {
        assert_eq!(printable("plain\ttext"), "plain\ttext");
        assert_eq!(
            printable("\x1b[2J\x07\rREPORT fake\u{9b}31m"),
            "\\x1b[2J\\x07\\rREPORT fake\\u{9b}31m"
        );
        assert_eq!(printable("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
    }

    fn decode(b64: &str) -> String {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[tokio::test]
    async fn a_tail_is_the_last_4_kb_of_one_invocation() {
        let logs = Logs::new(false, false);
        logs.line("START RequestId: a Version: $LATEST");
        logs.line("REPORT RequestId: a\tDuration: 1.00 ms");
        logs.line("START RequestId: b Version: $LATEST");
        for i in 0..100 {
            logs.line(format!("line {i:03} {}", "x".repeat(60)));
        }
        logs.line("END RequestId: b");
        logs.line("REPORT RequestId: b\tDuration: 2.00 ms");
        logs.line("START RequestId: c Version: $LATEST");
        let tail = decode(&logs.tail("b", Duration::ZERO).await.unwrap());
        assert_eq!(tail.len(), TAIL_BYTES);
        assert!(
            tail.ends_with("REPORT RequestId: b\tDuration: 2.00 ms\n"),
            "{tail}"
        );
        assert!(!tail.contains("RequestId: a") && !tail.contains("RequestId: c"));
        let short = decode(&logs.tail("a", Duration::ZERO).await.unwrap());
        assert_eq!(
            short,
            "START RequestId: a Version: $LATEST\nREPORT RequestId: a\tDuration: 1.00 ms\n"
        );
        assert_eq!(logs.tail("unknown", Duration::ZERO).await, None);
    }
}
