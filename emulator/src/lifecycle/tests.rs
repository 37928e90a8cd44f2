//! The lifecycle rules as tables: each test feeds inputs at given times and reads the
//! effects back as short sentences (`deliver r1`, `answer r1: error Sandbox.Timedout`).

use super::*;
use crate::calls::PostedBody;

const START_MS: u64 = 1_700_000_000_000;

/// A lifecycle under test, with its own clock.
struct Env {
    lifecycle: Lifecycle,
    origin: Instant,
    /// Receivers kept alive, so the lifecycle sees its callers as connected.
    keep: Vec<Box<dyn std::any::Any>>,
}

fn config(concurrency: u32, extensions: bool) -> Arc<FunctionConfig> {
    let mut c = FunctionConfig::new("/var/task/bootstrap");
    c.timeout = Duration::from_secs(3);
    c.max_concurrency = concurrency;
    if extensions {
        c.extensions_dir = Some("/opt/extensions".into());
    }
    Arc::new(c)
}

impl Env {
    fn new(concurrency: u32) -> Self {
        Self::with(config(concurrency, false))
    }

    fn with(config: Arc<FunctionConfig>) -> Self {
        Env {
            lifecycle: Lifecycle::new(config),
            origin: Instant::now(),
            keep: Vec::new(),
        }
    }

    fn clock(&self, ms: u64) -> Clock {
        Clock {
            now: self.origin + Duration::from_millis(ms),
            epoch_ms: START_MS + ms,
        }
    }

    /// Feeds `input` at `ms` and describes what came out.
    fn at(&mut self, ms: u64, input: Input) -> Vec<String> {
        let effects = self.lifecycle.handle(self.clock(ms), input);
        effects.into_iter().map(describe).collect()
    }

    fn invoke(&mut self, id: &str) -> Input {
        let (tx, rx) = oneshot::channel();
        self.keep.push(Box::new(rx));
        Input::Invoke(Invocation {
            request_id: id.into(),
            body: Bytes::from_static(b"{}"),
            client_context: None,
            trace_id: None,
            reply: Some(tx),
        })
    }

    fn next(&mut self) -> Input {
        let (tx, rx) = oneshot::channel();
        self.keep.push(Box::new(rx));
        Input::Call(Call::Runtime(RuntimeCall::Next(tx)))
    }

    fn respond(&mut self, id: &str) -> Input {
        let (tx, rx) = oneshot::channel();
        self.keep.push(Box::new(rx));
        Input::Call(Call::Runtime(RuntimeCall::Response {
            id: id.into(),
            body: PostedBody::Complete(Bytes::from_static(b"\"ok\"")),
            content_type: None,
            reply: tx,
        }))
    }

    fn register(&mut self, name: &str, events: &'static str) -> Input {
        let (tx, rx) = oneshot::channel();
        self.keep.push(Box::new(rx));
        Input::Call(Call::Extension(ExtensionCall::Register {
            name: name.into(),
            body: PostedBody::Complete(Bytes::from_static(events.as_bytes())),
            account_id: false,
            reply: tx,
        }))
    }

    fn extension_next(&mut self, id: &str) -> Input {
        let (tx, rx) = oneshot::channel();
        self.keep.push(Box::new(rx));
        Input::Call(Call::Extension(ExtensionCall::Next {
            id: id.into(),
            reply: tx,
        }))
    }

    fn exited(&self, who: Who) -> Input {
        Input::Exited {
            who,
            generation: self.lifecycle.generation(),
            clean: false,
            how: "signal: killed".into(),
        }
    }

    /// A started, idle environment (the runtime polled once).
    fn ready(concurrency: u32) -> Self {
        let mut env = Env::new(concurrency);
        env.lifecycle.start(env.clock(0));
        let next = env.next();
        env.at(1, next);
        env
    }

    /// The id of the only registered extension.
    fn extension_id(&self) -> String {
        self.lifecycle.extensions.registered[0].id.clone()
    }
}

fn result_of(result: &InvokeResult) -> String {
    match result {
        InvokeResult::Success { .. } => "success".into(),
        InvokeResult::FunctionError { body, .. } => {
            format!("error {}", error_type_of(body).unwrap_or_default())
        }
        InvokeResult::Streaming(_) => "stream".into(),
    }
}

fn refusal_of(r: &Refusal) -> String {
    format!("{} {}", r.0.as_u16(), r.1.error_type)
}

fn describe(effect: Effect) -> String {
    match effect {
        Effect::DiscoverExtensions => "discover extensions".into(),
        Effect::Launch(Who::Runtime, _) => "launch runtime".into(),
        Effect::Launch(Who::Extension(i), _) => format!("launch extension {i}"),
        Effect::Signal(who, signal) => format!("{signal:?} {who:?}").to_lowercase(),
        Effect::Abandon => "abandon".into(),
        Effect::SampleMemory => "sample memory".into(),
        Effect::AnswerCaller(_, result) => format!("answer caller: {}", result_of(&result)),
        Effect::EndStream(_, end) => format!("end stream: {end:?}"),
        Effect::Deliver(_, Ok(event)) => format!("deliver {}", event.request_id),
        Effect::Deliver(_, Err(r)) => format!("refuse next: {}", refusal_of(&r)),
        Effect::DeliverExtension((_, event)) => {
            let event: serde_json::Value = serde_json::from_slice(&event).unwrap_or_default();
            format!(
                "extension gets {}",
                event["eventType"].as_str().unwrap_or("?")
            )
        }
        Effect::Answer(Answer::Done(_, Ok(()))) => "answer ok".into(),
        Effect::Answer(Answer::Done(_, Err(r))) => format!("answer {}", refusal_of(&r)),
        Effect::Answer(Answer::Registered(_, r)) => match r {
            Ok(_) => "registered".into(),
            Err(r) => format!("refuse registration: {}", refusal_of(&r)),
        },
        Effect::Answer(Answer::Stream(_, _)) => "stream".into(),
        Effect::Answer(Answer::Refused(_, r)) => format!("refuse event next: {}", refusal_of(&r)),
        Effect::Platform(fact) => match fact {
            Fact::InitStart { suppressed } => {
                format!("INIT_START{}", if suppressed { " (in invoke)" } else { "" })
            }
            Fact::InitDone { .. } => "init done".into(),
            Fact::InitFailed { status, .. } => format!("INIT_REPORT {status}"),
            Fact::Start { request_id } => format!("START {request_id}"),
            Fact::RuntimeDone {
                request_id, status, ..
            } => format!("runtime done {request_id} {status}"),
            Fact::Report {
                request_id, status, ..
            } => format!("REPORT {request_id} {status}"),
            Fact::TimedOut { request_id, .. } => format!("timed out {request_id}"),
            Fact::Failed {
                request_id,
                error_type,
                ..
            } => format!("failed {request_id} {error_type}"),
            Fact::ExtensionRegistered { name, .. } => format!("extension {name} ready"),
            Fact::Subscribed { name, .. } => format!("{name} subscribed"),
        },
        Effect::Note(_) => "note".into(),
        Effect::Subscribe(id, _) => format!("subscribe {id}"),
        Effect::TelemetryShuttingDown => "telemetry flushes".into(),
        Effect::TelemetryClose => "telemetry closes".into(),
    }
}

#[test]
fn an_invoke_on_a_down_environment_starts_init_with_the_invoke_waiting() {
    let mut env = Env::new(1);
    let invoke = env.invoke("r1");
    assert_eq!(env.at(0, invoke), ["INIT_START", "launch runtime"]);
    assert!(!env.lifecycle.can_take(), "init is under way");
    let next = env.next();
    assert_eq!(env.at(40, next), ["init done", "START r1", "deliver r1"]);
}

#[test]
fn a_classic_invocation_ends_when_the_runtime_polls_again_and_only_then_may_the_next_start() {
    let mut env = Env::ready(1);
    let invoke = env.invoke("r1");
    assert_eq!(env.at(10, invoke), ["START r1", "deliver r1"]);
    assert!(!env.lifecycle.can_take());
    let respond = env.respond("r1");
    assert_eq!(
        env.at(20, respond),
        [
            "answer caller: success",
            "runtime done r1 success",
            "answer ok"
        ]
    );
    assert!(!env.lifecycle.can_take(), "the runtime has not polled yet");
    let next = env.next();
    assert_eq!(env.at(21, next), ["sample memory", "REPORT r1 success"]);
    assert!(env.lifecycle.can_take());
}

#[test]
fn a_second_poll_before_answering_gets_the_same_event_a4() {
    let mut env = Env::ready(1);
    let invoke = env.invoke("r1");
    env.at(10, invoke);
    let next = env.next();
    assert_eq!(env.at(11, next), ["deliver r1"]);
}

#[test]
fn a_second_result_is_refused_403_then_400_once_the_runtime_polled_a12() {
    let mut env = Env::ready(1);
    let invoke = env.invoke("r1");
    env.at(10, invoke);
    let respond = env.respond("r1");
    env.at(20, respond);
    let again = env.respond("r1");
    assert_eq!(env.at(21, again), ["answer 403 InvalidStateTransition"]);
    let next = env.next();
    env.at(22, next);
    let late = env.respond("r1");
    assert_eq!(env.at(23, late), ["answer 400 InvalidRequestID"]);
}

#[test]
fn a_classic_timeout_answers_the_caller_and_resets_the_environment_a24() {
    let mut env = Env::ready(1);
    let invoke = env.invoke("r1");
    env.at(10, invoke);
    assert_eq!(
        env.lifecycle.deadline(),
        Some(env.clock(3010).now),
        "the invoke's timeout counts from its start"
    );
    assert_eq!(
        env.at(3010, Input::Tick),
        [
            "sample memory",
            "timed out r1",
            "answer caller: error Sandbox.Timedout",
            "REPORT r1 timeout",
            "telemetry flushes",
            "kill runtime"
        ]
    );
    let exited = env.exited(Who::Runtime);
    assert_eq!(env.at(3011, exited), ["telemetry closes"]);
    assert!(env.lifecycle.can_take(), "down, ready to start again");
}

#[test]
fn an_exit_of_an_earlier_generation_is_ignored() {
    let mut env = Env::ready(1);
    let stale = Input::Exited {
        who: Who::Runtime,
        generation: env.lifecycle.generation() - 1,
        clean: true,
        how: "exit status 0".into(),
    };
    assert!(env.at(5, stale).is_empty());
    assert!(env.lifecycle.ready());
}

#[test]
fn a_crash_fails_the_invocation_and_resets_a23() {
    let mut env = Env::ready(1);
    let invoke = env.invoke("r1");
    env.at(10, invoke);
    let exited = env.exited(Who::Runtime);
    assert_eq!(
        env.at(20, exited),
        [
            "failed r1 Runtime.ExitError",
            "answer caller: error Runtime.ExitError",
            "REPORT r1 error",
            "telemetry flushes",
            "telemetry closes"
        ]
    );
}

#[test]
fn an_init_that_overruns_is_retried_inside_the_invoke_once_everything_is_down_d8() {
    let mut env = Env::new(1);
    let invoke = env.invoke("r1");
    env.at(0, invoke);
    assert_eq!(
        env.at(10_000, Input::Tick),
        ["INIT_REPORT timeout", "telemetry flushes", "kill runtime"]
    );
    let exited = env.exited(Who::Runtime);
    assert_eq!(
        env.at(10_001, exited),
        [
            "telemetry closes",
            "START r1",
            "INIT_START (in invoke)",
            "launch runtime"
        ]
    );
    // The retry is bounded by the invoke's timeout, from its start.
    assert_eq!(env.lifecycle.deadline(), Some(env.clock(13_001).now));
    let next = env.next();
    assert_eq!(env.at(10_050, next), ["init done", "deliver r1"]);
}

#[test]
fn a_stop_spins_an_idle_environment_down_and_waits_for_an_invocation_under_way() {
    let mut env = Env::ready(1);
    let invoke = env.invoke("r1");
    env.at(10, invoke);
    assert!(
        env.at(11, Input::Stop).is_empty(),
        "the invocation finishes first"
    );
    let respond = env.respond("r1");
    env.at(20, respond);
    let next = env.next();
    assert_eq!(
        env.at(21, next),
        [
            "sample memory",
            "REPORT r1 success",
            "telemetry flushes",
            "kill runtime"
        ]
    );
    let exited = env.exited(Who::Runtime);
    env.at(22, exited);
    assert!(env.lifecycle.finished());
    assert!(
        !env.lifecycle.can_take(),
        "a stopped environment takes nothing"
    );
}

#[test]
fn the_runtime_starts_only_once_every_external_extension_has_registered() {
    let mut env = Env::with(config(1, true));
    assert_eq!(
        env.lifecycle
            .start(env.clock(0))
            .into_iter()
            .map(describe)
            .collect::<Vec<_>>(),
        ["INIT_START", "discover extensions"]
    );
    let found = Input::ExtensionsFound(Ok(vec!["watcher".into()]));
    assert_eq!(env.at(1, found), ["launch extension 0"]);
    let register = env.register("watcher", r#"{"events":["INVOKE","SHUTDOWN"]}"#);
    assert_eq!(
        env.at(5, register),
        ["extension watcher ready", "launch runtime", "registered"]
    );
}

/// An environment with one external extension subscribed to INVOKE and SHUTDOWN, started
/// and idle.
fn ready_with_extension() -> (Env, String) {
    let mut env = Env::with(config(1, true));
    env.lifecycle.start(env.clock(0));
    env.at(1, Input::ExtensionsFound(Ok(vec!["watcher".into()])));
    let register = env.register("watcher", r#"{"events":["INVOKE","SHUTDOWN"]}"#);
    env.at(2, register);
    let id = env.extension_id();
    let next = env.next();
    env.at(3, next);
    let ext_next = env.extension_next(&id);
    assert_eq!(env.at(4, ext_next), ["init done"]);
    (env, id)
}

#[test]
fn the_next_invoke_waits_for_the_extensions_invoke_hook_b13() {
    let (mut env, id) = ready_with_extension();
    let invoke = env.invoke("r1");
    assert_eq!(
        env.at(10, invoke),
        ["START r1", "extension gets INVOKE", "deliver r1"]
    );
    let respond = env.respond("r1");
    env.at(20, respond);
    let next = env.next();
    assert!(
        !env.at(21, next).contains(&"REPORT r1 success".to_owned()),
        "the extension is still busy"
    );
    assert!(!env.lifecycle.can_take());
    let ext_next = env.extension_next(&id);
    assert_eq!(env.at(30, ext_next), ["sample memory", "REPORT r1 success"]);
    assert!(env.lifecycle.can_take());
}

#[test]
fn with_an_external_extension_the_runtime_gets_sigterm_and_the_extension_shutdown_in_a_2_s_budget()
{
    let (mut env, _) = ready_with_extension();
    assert_eq!(
        env.at(100, Input::Stop),
        ["telemetry flushes", "terminate runtime"]
    );
    assert_eq!(
        env.lifecycle.deadline(),
        Some(env.clock(400).now),
        "300 ms for the runtime"
    );
    assert_eq!(env.at(400, Input::Tick), ["kill runtime"]);
    let exited = env.exited(Who::Runtime);
    assert_eq!(env.at(410, exited), ["extension gets SHUTDOWN"]);
    assert_eq!(
        env.lifecycle.deadline(),
        Some(env.clock(2100).now),
        "the 2 s budget"
    );
    assert_eq!(env.at(2100, Input::Tick), ["kill extension(0)"]);
}

#[test]
fn a_managed_instance_runs_one_invocation_per_idle_poll_and_answers_them_in_any_order() {
    let mut env = Env::ready(2);
    let next = env.next();
    env.at(2, next);
    let (a, b) = (env.invoke("a"), env.invoke("b"));
    assert_eq!(env.at(10, a), ["START a", "deliver a"]);
    assert_eq!(env.at(11, b), ["START b", "deliver b"]);
    assert!(!env.lifecycle.can_take(), "no idle poll left");
    let respond = env.respond("b");
    assert_eq!(
        env.at(20, respond),
        [
            "answer caller: success",
            "runtime done b success",
            "sample memory",
            "REPORT b success",
            "answer ok"
        ]
    );
    let next = env.next();
    env.at(21, next);
    assert!(env.lifecycle.can_take(), "b's loop polls again");
    let respond = env.respond("a");
    assert!(env.at(22, respond).contains(&"REPORT a success".to_owned()));
}

#[test]
fn a_managed_instance_refuses_more_polls_than_its_concurrency() {
    let mut env = Env::ready(2);
    let second = env.next();
    assert!(env.at(2, second).is_empty());
    let third = env.next();
    assert_eq!(env.at(3, third), ["refuse next: 500 InternalServerError"]);
}

#[test]
fn a_managed_instance_times_out_one_invocation_only_and_answers_its_late_result_410_once() {
    let mut env = Env::ready(2);
    let next = env.next();
    env.at(2, next);
    let slow = env.invoke("slow");
    env.at(10, slow);
    let fast = env.invoke("fast");
    env.at(1000, fast);
    let expired = env.at(3010, Input::Tick);
    assert!(
        expired.contains(&"answer caller: error Sandbox.Timedout".to_owned()),
        "{expired:?}"
    );
    assert!(
        !expired.iter().any(|e| e.contains("kill")),
        "no reset: {expired:?}"
    );
    let late = env.respond("slow");
    assert_eq!(env.at(3020, late), ["answer 410 InvokeTimeout"]);
    let again = env.respond("slow");
    assert_eq!(env.at(3021, again), ["answer 400 InvalidRequestID"]);
    let respond = env.respond("fast");
    assert!(
        env.at(3030, respond)
            .contains(&"REPORT fast success".to_owned())
    );
}

#[test]
fn a_crash_of_a_managed_instance_fails_every_invocation_in_flight() {
    let mut env = Env::ready(2);
    let next = env.next();
    env.at(2, next);
    let (a, b) = (env.invoke("a"), env.invoke("b"));
    env.at(10, a);
    env.at(11, b);
    let exited = env.exited(Who::Runtime);
    let effects = env.at(20, exited);
    for id in ["a", "b"] {
        assert!(
            effects.contains(&format!("REPORT {id} error")),
            "{effects:?}"
        );
    }
    assert_eq!(
        effects
            .iter()
            .filter(|e| *e == "answer caller: error Runtime.ExitError")
            .count(),
        2
    );
}
