//! The default subscriber: Lambda's text or JSON lines, one `write` to stdout each.
//!
//! tracing-subscriber's `fmt` subscriber (its span registry and sharded slab, its field
//! formatters, JSON writer and clock) was 235 KB of a 1.16 MB function binary, and its
//! registry faulted in 32 KB at start. A function's logs need less, all of it here: the
//! level filter (tracing-subscriber's [`Targets`], which stays), each open span's name
//! and fields rendered once when they are recorded, the stack of spans entered on each
//! thread, and a line per event. A program that wants more installs its own subscriber
//! before the runtime starts; the runtime then leaves it alone.
//!
//! Lines (the request id comes from the invocation's task-local, see `super`):
//! - text: ` INFO invocation{requestId="…"}:outer{k=1}:inner: message k2="v"`;
//! - JSON: `{"timestamp":"…Z","level":"INFO","requestId":"…","message":"message",
//!   "k2":"v","span":{"name":"inner",…}}`, the innermost span's fields under `span`.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_core::span::Current;
use tracing_subscriber::filter::Targets;

use super::LogFormat;

/// Lambda's log lines for `tracing` events, filtered by `filter`.
pub(crate) struct LambdaSubscriber {
    format: LogFormat,
    filter: Targets,
    spans: Mutex<Spans>,
}

/// The open spans; span `Id` n is slot n - 1.
#[derive(Default)]
struct Spans {
    slots: Vec<Option<SpanData>>,
    free: Vec<usize>,
}

struct SpanData {
    metadata: &'static Metadata<'static>,
    /// The fields as they go in a line: `k=1 k2="v"` (text) or `"k":1,"k2":"v"` (JSON).
    fields: String,
    parent: Option<Id>,
    /// Handles on this span (`Span` clones, and each child's link to its parent).
    refs: usize,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<Id>> = const { RefCell::new(Vec::new()) };
    /// The line being written (reused: one allocation per thread, not per line).
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl LambdaSubscriber {
    pub(crate) fn new(format: LogFormat, filter: Targets) -> Self {
        LambdaSubscriber {
            format,
            filter,
            spans: Mutex::new(Spans::default()),
        }
    }

    fn spans(&self) -> std::sync::MutexGuard<'_, Spans> {
        // A panic while the lock was held left whole span records behind: carry on.
        self.spans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes one line for `event` into `line`. (The span table is locked only to copy
    /// what the line shows of it: a field's `Debug` that logs must not find it locked.)
    fn render(&self, event: &Event<'_>, line: &mut String) {
        let level = event.metadata().level().as_str();
        let leaf = parent(event.parent(), event.is_contextual());
        let request_id = super::request_id();
        match self.format {
            LogFormat::Text => {
                let _ = write!(line, "{level:>5} ");
                let scopes_start = line.len();
                if let Some(id) = &request_id {
                    let _ = write!(line, "invocation{{requestId={id:?}}}:");
                }
                {
                    let spans = self.spans();
                    let mut chain = Vec::new();
                    let mut next = leaf;
                    while let Some(data) = next.as_ref().and_then(|id| spans.get(id)) {
                        chain.push(data);
                        next = data.parent.clone();
                    }
                    for data in chain.iter().rev() {
                        line.push_str(data.metadata.name());
                        if !data.fields.is_empty() {
                            let _ = write!(line, "{{{}}}", data.fields);
                        }
                        line.push(':');
                    }
                }
                if line.len() > scopes_start {
                    line.push(' ');
                }
                event.record(&mut Fields::new(LogFormat::Text, line, false));
            }
            LogFormat::Json => {
                line.push_str("{\"timestamp\":\"");
                line.push_str(&ironlambda_api_client::time::rfc3339_now());
                let _ = write!(line, "\",\"level\":\"{level}\"");
                if let Some(id) = &request_id {
                    line.push_str(",\"requestId\":");
                    json_string(line, id);
                }
                event.record(&mut Fields::new(LogFormat::Json, line, true));
                // The innermost span, after the event's fields (which are written before
                // the table is locked).
                let spans = self.spans();
                if let Some(data) = leaf.as_ref().and_then(|id| spans.get(id)) {
                    line.push_str(",\"span\":{\"name\":");
                    json_string(line, data.metadata.name());
                    if !data.fields.is_empty() {
                        line.push(',');
                        line.push_str(&data.fields);
                    }
                    line.push('}');
                }
                drop(spans);
                line.push('}');
            }
        }
        line.push('\n');
    }
}

/// The slot of span `id` (ids count from 1: tracing has no id 0).
fn slot(id: &Id) -> Option<usize> {
    usize::try_from(id.into_u64()).ok()?.checked_sub(1)
}

impl Spans {
    fn get(&self, id: &Id) -> Option<&SpanData> {
        self.slots.get(slot(id)?)?.as_ref()
    }

    fn get_mut(&mut self, id: &Id) -> Option<&mut SpanData> {
        self.slots.get_mut(slot(id)?)?.as_mut()
    }

    fn insert(&mut self, data: SpanData) -> Id {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(data);
                slot
            }
            None => {
                self.slots.push(Some(data));
                self.slots.len() - 1
            }
        };
        Id::from_u64(slot as u64 + 1)
    }

    /// Drops one handle on `id`; returns whether the span closed. A closed span lets go
    /// of its parent.
    fn release(&mut self, id: &Id) -> bool {
        let mut closed = false;
        let mut next = Some(id.clone());
        while let Some(id) = next.take() {
            let Some(data) = self.get_mut(&id) else {
                break;
            };
            data.refs -= 1;
            if data.refs > 0 {
                break;
            }
            // `get_mut` found it, so it has a slot.
            let Some(slot) = slot(&id) else { break };
            next = self.slots[slot].take().and_then(|d| d.parent);
            self.free.push(slot);
            closed = true;
        }
        closed
    }
}

/// The parent of a new span or an event: the one named explicitly, else (when contextual)
/// the span entered last on this thread.
fn parent(explicit: Option<&Id>, contextual: bool) -> Option<Id> {
    match explicit {
        Some(id) => Some(id.clone()),
        None if contextual => current(),
        None => None,
    }
}

/// The span entered last on this thread.
fn current() -> Option<Id> {
    // `try_with`: a line logged while the thread's locals are torn down still goes out.
    ENTERED
        .try_with(|e| e.borrow().last().cloned())
        .ok()
        .flatten()
}

impl Subscriber for LambdaSubscriber {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter
            .would_enable(metadata.target(), metadata.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        let default = self.filter.default_level().unwrap_or(LevelFilter::OFF);
        Some(self.filter.iter().map(|(_, l)| l).fold(default, Ord::max))
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let parent = parent(attrs.parent(), attrs.is_contextual());
        let mut fields = String::new();
        attrs.record(&mut Fields::new(self.format, &mut fields, false));
        let mut spans = self.spans();
        let parent = parent.filter(|p| match spans.get_mut(p) {
            Some(data) => {
                data.refs += 1;
                true
            }
            None => false,
        });
        spans.insert(SpanData {
            metadata: attrs.metadata(),
            fields,
            parent,
            refs: 1,
        })
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        // Rendered before the table is locked (a field's `Debug` may log).
        let mut more = String::new();
        values.record(&mut Fields::new(self.format, &mut more, false));
        if more.is_empty() {
            return;
        }
        if let Some(data) = self.spans().get_mut(span) {
            if !data.fields.is_empty() {
                data.fields.push(separator(self.format));
            }
            data.fields.push_str(&more);
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let write = |line: &mut String| {
            line.clear();
            self.render(event, line);
            // One write per line, so lines from several threads never interleave.
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        };
        let reused = LINE.try_with(|line| match line.try_borrow_mut() {
            Ok(mut line) => {
                write(&mut line);
                if line.capacity() > 64 * 1024 {
                    *line = String::new();
                }
                true
            }
            Err(_) => false,
        });
        // A field's `Debug` that logs, or a line logged while the thread's locals are torn
        // down: that line gets a buffer of its own.
        if reused != Ok(true) {
            write(&mut String::new());
        }
    }

    fn enter(&self, span: &Id) {
        let _ = ENTERED.try_with(|e| e.borrow_mut().push(span.clone()));
    }

    fn exit(&self, span: &Id) {
        let _ = ENTERED.try_with(|e| {
            let mut entered = e.borrow_mut();
            if let Some(i) = entered.iter().rposition(|id| id == span) {
                entered.remove(i);
            }
        });
    }

    fn clone_span(&self, id: &Id) -> Id {
        if let Some(data) = self.spans().get_mut(id) {
            data.refs += 1;
        }
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        self.spans().release(&id)
    }

    fn current_span(&self) -> Current {
        let metadata = current().and_then(|id| Some((self.spans().get(&id)?.metadata, id)));
        match metadata {
            Some((metadata, id)) => Current::new(id, metadata),
            None => Current::none(),
        }
    }
}

/// Appends fields to `out` as a line shows them: `message k=1 s="v"` (text: the message
/// bare, every other value as `Debug` writes it, as tracing-subscriber does) or
/// `"message":"…","k":1,"s":"v"` (JSON: numbers and booleans as themselves).
struct Fields<'a> {
    format: LogFormat,
    out: &'a mut String,
    /// Whether a separator goes before the next field: after the first, or from the start
    /// when `out` already ends with fields (a JSON object's first members).
    separate: bool,
}

impl<'a> Fields<'a> {
    fn new(format: LogFormat, out: &'a mut String, continues: bool) -> Self {
        Fields {
            format,
            out,
            separate: continues,
        }
    }

    /// The separator before a field, and its name (`r#type` is `type`).
    fn start(&mut self, field: &Field) -> &'static str {
        if self.separate {
            self.out.push(separator(self.format));
        }
        self.separate = true;
        let name = field.name();
        name.strip_prefix("r#").unwrap_or(name)
    }

    /// A number or a boolean: in JSON the text it already is, in a text line what `Debug`
    /// writes.
    fn literal(&mut self, field: &Field, value: impl fmt::Display + fmt::Debug) {
        match self.format {
            LogFormat::Text => self.record_debug(field, &value),
            LogFormat::Json => {
                let name = self.start(field);
                json_string(self.out, name);
                let _ = write!(self.out, ":{value}");
            }
        }
    }
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name().starts_with("log.") {
            return; // `log` records' metadata, carried as fields by tracing-log
        }
        match self.format {
            LogFormat::Text => {
                let name = self.start(field);
                let _ = if name == "message" {
                    write!(self.out, "{value:?}")
                } else {
                    write!(self.out, "{name}={value:?}")
                };
            }
            LogFormat::Json => {
                let name = self.start(field);
                json_string(self.out, name);
                self.out.push(':');
                json_string(self.out, &format!("{value:?}"));
            }
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match self.format {
            LogFormat::Text => self.record_debug(field, &value),
            LogFormat::Json => {
                let name = self.start(field);
                json_string(self.out, name);
                self.out.push(':');
                json_string(self.out, value);
            }
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.literal(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.literal(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.literal(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those go as text.
        if value.is_finite() {
            self.literal(field, value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

/// What goes between two fields: `k=1 k2=2` in text, `"k":1,"k2":2` in JSON.
fn separator(format: LogFormat) -> char {
    match format {
        LogFormat::Text => ' ',
        LogFormat::Json => ',',
    }
}

/// `text` as a JSON string, quotes included.
fn json_string(out: &mut String, text: &str) {
    // serde_json escapes exactly as JSON asks; a `&str` always serializes.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    /// The line `log` writes under a subscriber of `format` at TRACE.
    fn line_of(format: LogFormat, log: impl FnOnce()) -> String {
        lines_of(format, Targets::new().with_default(Level::TRACE), log)
    }

    /// The lines `log` writes under a subscriber of `format` filtered by `filter`.
    fn lines_of(format: LogFormat, filter: Targets, log: impl FnOnce()) -> String {
        let subscriber = LambdaSubscriber::new(format, filter);
        let captured = std::sync::Arc::new(Mutex::new(String::new()));
        let sink = captured.clone();
        let recorder = Recorder {
            inner: subscriber,
            sink,
        };
        tracing::subscriber::with_default(recorder, log);
        captured.lock().unwrap().clone()
    }

    /// Our subscriber, keeping lines instead of writing them to stdout.
    struct Recorder {
        inner: LambdaSubscriber,
        sink: std::sync::Arc<Mutex<String>>,
    }

    impl Subscriber for Recorder {
        fn enabled(&self, m: &Metadata<'_>) -> bool {
            self.inner.enabled(m)
        }
        fn new_span(&self, a: &Attributes<'_>) -> Id {
            self.inner.new_span(a)
        }
        fn record(&self, s: &Id, v: &Record<'_>) {
            self.inner.record(s, v)
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            let mut line = String::new();
            self.inner.render(e, &mut line);
            self.sink.lock().unwrap().push_str(&line);
        }
        fn enter(&self, s: &Id) {
            self.inner.enter(s)
        }
        fn exit(&self, s: &Id) {
            self.inner.exit(s)
        }
        fn clone_span(&self, id: &Id) -> Id {
            self.inner.clone_span(id)
        }
        fn try_close(&self, id: Id) -> bool {
            self.inner.try_close(id)
        }
        fn current_span(&self) -> Current {
            self.inner.current_span()
        }
    }

    #[test]
    fn span_current_is_the_innermost_entered_span() {
        let line = line_of(LogFormat::Text, || {
            let span = tracing::info_span!("request", user = tracing::field::Empty);
            let _s = span.enter();
            tracing::Span::current().record("user", "ada");
            tracing::info!("hi");
        });
        assert_eq!(line, " INFO request{user=\"ada\"}: hi\n");
    }

    #[test]
    fn a_text_line_names_its_spans_from_the_outermost_then_the_fields() {
        let line = line_of(LogFormat::Text, || {
            let outer = tracing::info_span!("outer", k = 1);
            let _o = outer.enter();
            let inner = tracing::info_span!("inner");
            let _i = inner.enter();
            tracing::warn!(s = "v", r#type = 2, "took {} ms", 5);
        });
        assert_eq!(line, " WARN outer{k=1}:inner: took 5 ms s=\"v\" type=2\n");
    }

    #[test]
    fn a_text_line_outside_any_span_is_the_level_and_the_fields() {
        let line = line_of(LogFormat::Text, || tracing::info!("ready"));
        assert_eq!(line, " INFO ready\n");
    }

    #[test]
    fn a_json_line_keeps_numbers_and_booleans_and_the_innermost_span() {
        let line = line_of(LogFormat::Json, || {
            let span = tracing::info_span!("order", id = "o-1");
            let _s = span.enter();
            tracing::error!(
                count = 3,
                ok = false,
                ratio = 0.5,
                nan = f64::NAN,
                "quote \" here"
            );
        });
        let record: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(record["level"], "ERROR");
        assert_eq!(record["message"], "quote \" here");
        assert_eq!(record["count"], 3);
        assert_eq!(record["ok"], false);
        assert_eq!(record["ratio"], 0.5);
        assert_eq!(record["nan"], "NaN");
        assert_eq!(
            record["span"],
            serde_json::json!({"name": "order", "id": "o-1"})
        );
        assert!(
            record["timestamp"].as_str().unwrap().ends_with('Z'),
            "{line}"
        );
    }

    #[test]
    fn fields_recorded_later_show_in_the_span() {
        let line = line_of(LogFormat::Text, || {
            let span = tracing::info_span!("job", done = tracing::field::Empty);
            span.record("done", true);
            let _s = span.enter();
            tracing::info!("finished");
        });
        assert_eq!(line, " INFO job{done=true}: finished\n");
    }

    #[test]
    fn a_parent_lives_while_a_child_does_and_closed_spans_free_their_slots() {
        let open = |d: &tracing::Dispatch| {
            let ours = d.downcast_ref::<LambdaSubscriber>().unwrap();
            ours.spans().slots.iter().flatten().count()
        };
        let filter = Targets::new().with_default(Level::TRACE);
        let subscriber = LambdaSubscriber::new(LogFormat::Text, filter);
        tracing::subscriber::with_default(subscriber, || {
            let parent = tracing::error_span!("parent");
            let child = parent.in_scope(|| tracing::error_span!("child"));
            drop(parent);
            assert_eq!(tracing::dispatcher::get_default(open), 2);
            drop(child);
            assert_eq!(tracing::dispatcher::get_default(open), 0);
        });
    }

    #[test]
    fn the_filter_decides_which_lines_are_written() {
        let filter = Targets::new()
            .with_default(Level::WARN)
            .with_target("chatty", Level::TRACE);
        let lines = lines_of(LogFormat::Text, filter.clone(), || {
            tracing::info!("dropped");
            tracing::warn!("kept");
            tracing::debug!(target: "chatty", "also kept");
        });
        assert_eq!(lines, " WARN kept\nDEBUG also kept\n");
        let hint = LambdaSubscriber::new(LogFormat::Text, filter).max_level_hint();
        assert_eq!(hint, Some(LevelFilter::TRACE));
    }
}
