//! Fault injection: the Runtime API misbehaving on purpose, so a function's (or our
//! runtime's) handling of a broken control plane can be seen and tested. Each fault is a
//! rule, written as `--fault SPEC` on the command line or [`Faults::parse`] in code:
//!
//! | spec | what the Runtime API does |
//! |---|---|
//! | `next-500` | answers `/next` with 500 before taking any event |
//! | `next-drop` | closes the connection of a `/next` before taking any event |
//! | `truncate-event` | hands out an event cut to half its length |
//! | `omit-header=NAME` | leaves out `Lambda-Runtime-NAME` from an event (`aws-request-id`, `deadline-ms`, `invoked-function-arn`, `trace-id`, `client-context`) |
//! | `corrupt-header=NAME` | sends that header with a value no runtime can use |
//! | `response-STATUS` | answers `/response` or `/error` with STATUS (400, 403, 410, 413 or 500) after passing the result on, so the caller still gets it and only the runtime sees the refusal |
//! | `delay=MS` | waits MS milliseconds before each answer |
//! | `close` | closes the connection after each answer (no keep-alive) |
//! | `random=SEED[:PERCENT]` | for each request, with PERCENT % chance (default 5), one of the faults above that lose nothing (no header corruption or response refusals), drawn from a generator seeded with SEED: the same seed gives the same run |
//!
//! A spec may end in `xN` to apply N times (`next-500x3`); without it, the fault applies
//! to every request it fits (`delay`, `close`) or once (the others).
//!
//! Faults are applied where requests enter and answers leave; the environment's rules
//! (which call is allowed when, what the caller gets) are untouched.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use ironlambda_api_client::headers;

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    NextStatus(u16),
    NextDrop,
    TruncateEvent,
    OmitHeader(&'static str),
    CorruptHeader(&'static str),
    ResponseStatus(u16),
    Delay(Duration),
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    action: Action,
    /// How many more times it applies; `None`: always.
    remaining: Option<u32>,
}

/// The seeded random mode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Random {
    state: u64,
    percent: u64,
}

impl Random {
    /// xorshift64*: small, fast, and the same sequence for the same seed.
    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// With `percent` % chance, a fault that loses nothing for a request of `kind`.
    fn draw(&mut self, kind: Kind) -> Option<Action> {
        if self.next() % 100 >= self.percent {
            return None;
        }
        let pick = self.next();
        Some(match kind {
            Kind::Next => match pick % 4 {
                0 => Action::NextStatus(500),
                1 => Action::NextDrop,
                2 => Action::Delay(Duration::from_millis(pick % 7)),
                _ => Action::Close,
            },
            // A truncated event fails its invocation, which the caller hears about; an
            // event without a trace is a normal event.
            Kind::Event => match pick % 2 {
                0 => Action::TruncateEvent,
                _ => Action::OmitHeader(headers::TRACE_ID),
            },
            Kind::Answer => match pick % 2 {
                0 => Action::Delay(Duration::from_millis(pick % 7)),
                _ => Action::Close,
            },
        })
    }
}

/// Which point of a request a fault may apply at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A `/next` call, before an event is taken.
    Next,
    /// An event being handed out.
    Event,
    /// The answer to `/response`, `/error` or `/init/error`.
    Answer,
}

/// A set of faults to inject. Empty (the default): the Runtime API behaves as Lambda's.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    random: Mutex<Option<Random>>,
}

impl Clone for Faults {
    fn clone(&self) -> Self {
        Faults {
            rules: Mutex::new(lock(&self.rules).clone()),
            random: Mutex::new(lock(&self.random).clone()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fault spec that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpecError(String);

impl std::fmt::Display for FaultSpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultSpecError {}

fn header_named(name: &str) -> Option<&'static str> {
    Some(
        match name
            .to_ascii_lowercase()
            .trim_start_matches("lambda-runtime-")
        {
            "aws-request-id" | "request-id" => headers::REQUEST_ID,
            "deadline-ms" | "deadline" => headers::DEADLINE_MS,
            "invoked-function-arn" | "arn" => headers::INVOKED_FUNCTION_ARN,
            "trace-id" | "trace" => headers::TRACE_ID,
            "client-context" => headers::CLIENT_CONTEXT,
            _ => return None,
        },
    )
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Faults::default()
    }

    /// Adds the fault `spec` (see the module documentation for the forms).
    pub fn parse(self, spec: &str) -> Result<Self, FaultSpecError> {
        let bad = |why: &str| FaultSpecError(format!("fault {spec:?}: {why}"));
        let spec = spec.trim();
        if let Some(rest) = spec.strip_prefix("random=") {
            let (seed, percent) = rest.split_once(':').unwrap_or((rest, "5"));
            let seed: u64 = seed.parse().map_err(|_| bad("the seed is not a number"))?;
            let percent: u64 = percent
                .parse()
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| bad("the percentage is not a number from 0 to 100"))?;
            *lock(&self.random) = Some(Random {
                // xorshift needs a state other than zero.
                state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
                percent,
            });
            return Ok(self);
        }
        let (body, count) = match spec.rsplit_once('x') {
            Some((body, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                let n: u32 = n.parse().map_err(|_| bad("the count is too large"))?;
                (body, Some(n))
            }
            _ => (spec, None),
        };
        let (action, always) = match body.split_once('=') {
            Some(("omit-header", name)) => (
                Action::OmitHeader(header_named(name).ok_or_else(|| bad("unknown header"))?),
                false,
            ),
            Some(("corrupt-header", name)) => (
                Action::CorruptHeader(header_named(name).ok_or_else(|| bad("unknown header"))?),
                false,
            ),
            Some(("delay", ms)) => (
                Action::Delay(Duration::from_millis(
                    ms.trim_end_matches("ms")
                        .parse()
                        .map_err(|_| bad("the delay is not a number of milliseconds"))?,
                )),
                true,
            ),
            Some(_) => return Err(bad("unknown fault")),
            None => match body {
                "next-500" => (Action::NextStatus(500), false),
                "next-drop" => (Action::NextDrop, false),
                "truncate-event" => (Action::TruncateEvent, false),
                "close" => (Action::Close, true),
                other => match other.strip_prefix("response-").map(u16::from_str) {
                    Some(Ok(s @ (400 | 403 | 410 | 413 | 500))) => {
                        (Action::ResponseStatus(s), false)
                    }
                    Some(_) => return Err(bad("response faults are 400, 403, 410, 413 or 500")),
                    None => return Err(bad("unknown fault")),
                },
            },
        };
        let remaining = count.or(if always { None } else { Some(1) });
        lock(&self.rules).push(Rule { action, remaining });
        Ok(self)
    }

    /// Takes the faults that apply now to a request of `kind`, using them up.
    fn take(&self, kind: Kind) -> Vec<Action> {
        let fits = |a: &Action| match kind {
            Kind::Next => matches!(
                a,
                Action::NextStatus(_) | Action::NextDrop | Action::Delay(_) | Action::Close
            ),
            Kind::Event => matches!(
                a,
                Action::TruncateEvent | Action::OmitHeader(_) | Action::CorruptHeader(_)
            ),
            Kind::Answer => matches!(
                a,
                Action::ResponseStatus(_) | Action::Delay(_) | Action::Close
            ),
        };
        // One answer can carry one status (or be dropped once): rules that decide the
        // answer apply one per request, in the order they were given.
        let decides = |a: &Action| {
            matches!(
                a,
                Action::NextStatus(_) | Action::ResponseStatus(_) | Action::NextDrop
            )
        };
        let mut decided = false;
        let mut taken = Vec::new();
        let mut rules = lock(&self.rules);
        for rule in rules.iter_mut().filter(|r| fits(&r.action)) {
            if decides(&rule.action) {
                if decided || rule.remaining == Some(0) {
                    continue;
                }
                decided = true;
            }
            match &mut rule.remaining {
                Some(0) => continue,
                Some(n) => *n -= 1,
                None => {}
            }
            taken.push(rule.action.clone());
        }
        rules.retain(|r| r.remaining != Some(0));
        drop(rules);
        if let Some(action) = lock(&self.random).as_mut().and_then(|r| r.draw(kind)) {
            taken.push(action);
        }
        taken
    }

    /// Whether any fault is set.
    pub fn is_empty(&self) -> bool {
        lock(&self.rules).is_empty() && lock(&self.random).is_none()
    }

    pub(crate) fn plan(&self, kind: Kind) -> Plan {
        if self.is_empty() {
            return Plan::default();
        }
        let mut plan = Plan::default();
        for action in self.take(kind) {
            match action {
                Action::NextStatus(s) | Action::ResponseStatus(s) => plan.status = Some(s),
                Action::NextDrop => plan.drop = true,
                Action::TruncateEvent => plan.truncate = true,
                Action::OmitHeader(h) => plan.omit.push(h),
                Action::CorruptHeader(h) => plan.corrupt.push(h),
                Action::Delay(d) => plan.delay += d,
                Action::Close => plan.close = true,
            }
        }
        plan
    }
}

/// What to do to one request or answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Answer with this status instead.
    pub(crate) status: Option<u16>,
    /// Close the connection without answering.
    pub(crate) drop: bool,
    /// Cut the event to half its length.
    pub(crate) truncate: bool,
    /// Leave these headers out of the event.
    pub(crate) omit: Vec<&'static str>,
    /// Send these headers with values no runtime can use.
    pub(crate) corrupt: Vec<&'static str>,
    /// Wait this long before answering.
    pub(crate) delay: Duration,
    /// Close the connection after answering.
    pub(crate) close: bool,
}

/// A value for a corrupted header: text no runtime should accept for it.
pub(crate) fn corrupted(header: &str) -> &'static str {
    if header == headers::REQUEST_ID {
        "../init/error"
    } else if header == headers::DEADLINE_MS {
        "soon"
    } else if header == headers::CLIENT_CONTEXT {
        "{not json"
    } else {
        "\u{7f}garbage"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_as_documented() {
        let f = Faults::none()
            .parse("next-500x2")
            .unwrap()
            .parse("omit-header=deadline-ms")
            .unwrap()
            .parse("delay=5ms")
            .unwrap();
        assert_eq!(f.plan(Kind::Next).status, Some(500));
        let second = f.plan(Kind::Next);
        assert_eq!(second.status, Some(500));
        assert_eq!(second.delay, Duration::from_millis(5));
        assert_eq!(f.plan(Kind::Next).status, None, "used up after two");
        assert_eq!(f.plan(Kind::Event).omit, vec![headers::DEADLINE_MS]);
        assert!(f.plan(Kind::Event).omit.is_empty(), "once by default");
        assert_eq!(
            f.plan(Kind::Answer).delay,
            Duration::from_millis(5),
            "delay is always"
        );
    }

    #[test]
    fn status_faults_apply_one_per_request_in_order() {
        let f = Faults::none()
            .parse("response-400")
            .unwrap()
            .parse("response-413")
            .unwrap();
        assert_eq!(f.plan(Kind::Answer).status, Some(400));
        assert_eq!(f.plan(Kind::Answer).status, Some(413));
        assert_eq!(f.plan(Kind::Answer).status, None);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, why) in [
            ("next-404", "unknown fault"),
            ("response-418", "400, 403, 410, 413 or 500"),
            ("omit-header=colour", "unknown header"),
            ("delay=soon", "milliseconds"),
            ("random=x", "seed"),
            ("random=1:101", "percentage"),
        ] {
            let e = Faults::none().parse(spec).unwrap_err();
            assert!(e.to_string().contains(why), "{spec}: {e}");
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let draws = |seed: &str| {
            let f = Faults::none().parse(seed).unwrap();
            (0..200).map(|_| f.plan(Kind::Next)).collect::<Vec<_>>()
        };
        assert_eq!(draws("random=7:30"), draws("random=7:30"));
        assert_ne!(draws("random=7:30"), draws("random=8:30"));
        let hits = draws("random=7:30")
            .iter()
            .filter(|p| **p != Plan::default())
            .count();
        assert!((30..=90).contains(&hits), "{hits} of 200 at 30 %");
    }
}
