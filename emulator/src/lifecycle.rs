//! The lifecycle of one execution environment, as a pure state machine (protocol.md §1.7,
//! §3, §8): [`Input`]s in (an invoke, an API call, a process exit, a deadline), [`Effect`]s
//! out (launch, signal, answer a caller, deliver an event, report). It does no I/O and
//! reads no clock (`now` comes with every input), so every rule is decided here, in the
//! order events happened, and can be tested as a table of inputs and effects.
//! `environment.rs` drives it.
//!
//! A classic environment (max concurrency 1):
//!
//! ```text
//! Down --invoke--> Init --runtime /next + every extension /event/next--> Ready
//! Ready --invoke--> one invocation running --/response|/error--> answered
//! answered --runtime /next + INVOKE subscribers done--> Ready (the next may start)
//! any --timeout, crash, init failure, exit/error, stop--> Shutdown --all exited--> Down
//! ```
//!
//! An environment of Lambda Managed Instances (max concurrency N > 1, §8): up to N
//! invocations at once, each handed to an idle runtime `/next`; an invocation is over when
//! its result is posted; a timeout fails that invocation only (a late answer gets 410
//! once); a crash or a failed extension resets the whole environment.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use ironlambda_api_client::telemetry::{SubscriptionApi, TelemetrySubscription};
use ironlambda_api_client::wire::{
    ErrorRequest, MAX_RESPONSE_PAYLOAD, MAX_STREAMED_RESPONSE, invalid_request_id,
    invalid_state_transition, invoke_timeout, request_entity_too_large,
    streamed_response_too_large,
};
use ironlambda_api_client::{
    ExtensionEvent, InvokeEvent, RegisterResponse, ShutdownEvent, ShutdownReason, Tracing,
};
use tokio::sync::{mpsc, oneshot};

use crate::calls::{
    Call, ErrorPhase, Event, ExtensionCall, Invocation, InvokeResult, PostedBody, Refusal,
    Registration, Reply, ResponseStream, RuntimeCall, StreamEnd, StreamedBody, error_json,
    error_type_of, refuse, truncated,
};
use crate::config::FunctionConfig;
use crate::extensions::{Delivery, Extensions, External, MAX_EXTENSIONS, Window};
use crate::platform::Fact;
use crate::process::Who;

/// How long processes get to be reaped after SIGKILL before the environment gives up on them.
const REAP_LIMIT: Duration = Duration::from_secs(2);

/// When an input happened: the monotonic instant, and the wall clock (epoch ms) at that
/// instant, for the deadlines the Runtime API hands out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) now: Instant,
    pub(crate) epoch_ms: u64,
}

impl Clock {
    fn epoch_ms_at(&self, at: Instant) -> u64 {
        self.epoch_ms
            .saturating_add(at.saturating_duration_since(self.now).as_millis() as u64)
    }
}

/// Something that happened to the environment.
pub(crate) enum Input {
    /// An invocation routed here (only when [`Lifecycle::can_take`] said so).
    Invoke(Invocation),
    /// A Runtime, Extensions, Telemetry or Logs API call.
    Call(Call),
    /// The extensions directory was read: the names found, in launch order.
    ExtensionsFound(Result<Vec<Arc<str>>, String>),
    /// A process could not be started.
    LaunchFailed(Who, String),
    /// A process of init `generation` exited, described as Lambda describes it.
    Exited {
        who: Who,
        generation: u64,
        clean: bool,
        how: String,
    },
    /// The deadline [`Lifecycle::deadline`] gave has passed.
    Tick,
    /// The emulator is stopping: spin down once idle.
    Stop,
}

/// A signal for a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Terminate,
    Kill,
}

/// The answer to an API call that is answered at once.
pub(crate) enum Answer {
    Done(Reply<()>, Result<(), Refusal>),
    Registered(Reply<Registration>, Result<Registration, Refusal>),
    Stream(
        Reply<mpsc::Sender<Bytes>>,
        Result<mpsc::Sender<Bytes>, Refusal>,
    ),
    /// An extension's `/event/next` refused.
    Refused(Reply<Bytes>, Refusal),
}

/// Something the driver must do.
pub(crate) enum Effect {
    /// Read the extensions directory; answer with [`Input::ExtensionsFound`].
    DiscoverExtensions,
    /// Start a process of init generation `generation` (the runtime, or the external
    /// extension at that index of the names found); a failure comes back as
    /// [`Input::LaunchFailed`].
    Launch(Who, u64),
    /// Signal a process.
    Signal(Who, Signal),
    /// Stop waiting for processes that outlived SIGKILL.
    Abandon,
    /// Note the runtime's peak memory now, for `REPORT`. (The kernel keeps the high-water
    /// mark, so one look when an invocation ends is enough; the look costs a read of
    /// `/proc/<pid>/status`.)
    SampleMemory,
    /// Answer an invocation's caller.
    AnswerCaller(Option<oneshot::Sender<InvokeResult>>, InvokeResult),
    /// Tell a streaming caller how its stream ended.
    EndStream(oneshot::Sender<StreamEnd>, StreamEnd),
    /// Answer a runtime `/next`: an event, or a refusal.
    Deliver(Reply<Arc<Event>>, Result<Arc<Event>, Refusal>),
    /// Answer an extension's `/event/next`.
    DeliverExtension(Delivery),
    /// Answer an API call.
    Answer(Answer),
    /// Report to the log and the telemetry subscribers.
    Platform(Fact),
    /// A line of the emulator's own, explaining what it did.
    Note(String),
    /// Add (or replace) extension `id`'s telemetry subscription.
    Subscribe(String, TelemetrySubscription),
    /// The shutdown phase began: subscribers get their last batches promptly.
    TelemetryShuttingDown,
    /// The environment is down: close the subscriptions.
    TelemetryClose,
}

struct Init {
    started: Instant,
    deadline: Instant,
    job: Option<Invocation>,
    /// A suppressed init (protocol.md §3.1): the retry of a failed or overrun init inside
    /// the invoke that was waiting for it, bounded by that invoke's timeout. `START` was
    /// already written, and the invoke's clock started with this init.
    suppressed: bool,
    /// What the runtime posted to `/init/error`, served to the waiting invoke.
    error: Option<(Bytes, Option<HeaderValue>)>,
    runtime_launched: bool,
    /// The runtime called `/next`: registration is closed.
    runtime_ready: bool,
}

struct Invoke {
    event: Arc<Event>,
    reply: Option<oneshot::Sender<InvokeResult>>,
    /// While the runtime streams its response: where the stream's end is told.
    streaming: Option<oneshot::Sender<StreamEnd>>,
    delivered: bool,
    started: Instant,
    deadline: Instant,
    init_duration: Option<Duration>,
    /// The runtime posted its result (classic: the post-invoke phase until it polls again).
    answered: bool,
    /// Classic: the runtime called `/next` after answering.
    runtime_done: bool,
    /// How the runtime answered, for `platform.report`: `error` with its errorType after
    /// `/error`, `failure` with the platform's type when the answer could not be taken;
    /// `None` for success.
    outcome: Option<(&'static str, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// SIGTERM (or SIGKILL) sent to the runtime; waiting for it to exit.
    Runtime,
    /// SHUTDOWN sent to subscribed extensions; waiting for them to exit.
    Extensions,
    /// Everything was SIGKILLed; waiting for the exits to be reaped.
    Reaping,
}

struct Shutdown {
    reason: ShutdownReason,
    /// An invoke whose init failed: once everything is down, init runs again inside it.
    retry: Option<Invocation>,
    /// End of the shutdown budget.
    deadline: Instant,
    deadline_ms: u64,
    stage: Stage,
    /// When the current stage gives up.
    next_tick: Instant,
    runtime_killed: bool,
}

enum Phase {
    Down,
    Init(Init),
    /// Init is over; invocations (none, or those in `Lifecycle::invokes`) run.
    Ready,
    Shutdown(Shutdown),
}

/// One environment's lifecycle state.
pub(crate) struct Lifecycle {
    config: Arc<FunctionConfig>,
    /// How many invocations may run at once (`AWS_LAMBDA_MAX_CONCURRENCY`).
    concurrency: usize,
    /// Incremented at every init, so exits of an earlier generation are recognised.
    generation: u64,
    runtime_alive: bool,
    /// Runtime `/next` calls waiting for an event.
    waiting: VecDeque<Reply<Arc<Event>>>,
    extensions: Extensions,
    /// Which API each extension subscribed through (one of them, never both).
    subscriptions: Vec<(String, SubscriptionApi)>,
    phase: Phase,
    /// The invocations of a `Ready` environment, oldest first.
    invokes: Vec<Invoke>,
    /// Managed instances: invocations the platform timed out, whose late answer gets 410
    /// once.
    timed_out: HashSet<String>,
    /// Init duration of an eager init, reported with the first invoke.
    unreported_init: Option<Duration>,
    /// No new invokes; the environment spins down once idle and then stays down.
    stopping: bool,
    effects: Vec<Effect>,
}

impl Lifecycle {
    pub(crate) fn new(config: Arc<FunctionConfig>) -> Self {
        Lifecycle {
            concurrency: config.max_concurrency.max(1) as usize,
            config,
            generation: 0,
            runtime_alive: false,
            waiting: VecDeque::new(),
            extensions: Extensions::default(),
            subscriptions: Vec::new(),
            phase: Phase::Down,
            invokes: Vec::new(),
            timed_out: HashSet::new(),
            unreported_init: None,
            stopping: false,
            effects: Vec::new(),
        }
    }

    /// Starts an eager init (no invoke waiting).
    pub(crate) fn start(&mut self, clock: Clock) -> Vec<Effect> {
        self.begin_init(clock, None, false);
        std::mem::take(&mut self.effects)
    }

    /// Takes `input` and returns what must be done about it, in order.
    pub(crate) fn handle(&mut self, clock: Clock, input: Input) -> Vec<Effect> {
        match input {
            Input::Invoke(job) => self.on_invoke(clock, job),
            Input::Call(call) => self.on_call(clock, call),
            Input::ExtensionsFound(found) => self.on_extensions_found(clock, found),
            Input::LaunchFailed(who, error) => self.on_launch_failed(clock, who, error),
            Input::Exited {
                who,
                generation,
                clean,
                how,
            } => {
                if generation == self.generation {
                    self.on_exit(clock, who, clean, how);
                }
            }
            Input::Tick => self.on_deadline(clock),
            Input::Stop => {
                self.stopping = true;
                self.spin_down_when_idle(clock);
            }
        }
        std::mem::take(&mut self.effects)
    }

    /// The current init generation; exits of earlier ones are ignored.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// When [`Input::Tick`] is due next.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Init(i) => Some(i.deadline),
            Phase::Ready => self.invokes.iter().map(|i| i.deadline).min(),
            Phase::Shutdown(s) => Some(s.next_tick),
            Phase::Down => None,
        }
    }

    /// Whether an invoke routed here now would start at once (or start an init for it):
    /// not stopping, and down, or ready with room (classic: nothing in flight; managed
    /// instances: a runtime `/next` waiting).
    pub(crate) fn can_take(&self) -> bool {
        if self.stopping {
            return false;
        }
        match self.phase {
            Phase::Down => true,
            Phase::Ready if self.concurrency == 1 => self.invokes.is_empty(),
            Phase::Ready => self.waiting.iter().any(|w| !w.is_closed()),
            Phase::Init(_) | Phase::Shutdown(_) => false,
        }
    }

    /// Whether the environment is initialised and idle, with room for an invoke now.
    pub(crate) fn ready(&self) -> bool {
        matches!(self.phase, Phase::Ready) && self.can_take()
    }

    /// Whether the environment is down and will stay so (it was stopped).
    pub(crate) fn finished(&self) -> bool {
        self.stopping && matches!(self.phase, Phase::Down)
    }

    fn emit(&mut self, effect: Effect) {
        self.effects.push(effect);
    }

    fn fact(&mut self, fact: Fact) {
        self.effects.push(Effect::Platform(fact));
    }

    fn note(&mut self, line: String) {
        self.effects.push(Effect::Note(line));
    }

    fn answer_caller(
        &mut self,
        reply: Option<oneshot::Sender<InvokeResult>>,
        result: InvokeResult,
    ) {
        // The caller may have gone away; the invocation still ran (edge-cases A28).
        if reply.is_some() {
            self.emit(Effect::AnswerCaller(reply, result));
        }
    }

    fn deliveries(&mut self, deliveries: Vec<Delivery>) {
        for d in deliveries {
            self.emit(Effect::DeliverExtension(d));
        }
    }

    /// Lambda spins down an idle environment, never one in the middle of an invocation:
    /// invocations under way finish first (their timeout still bounds them).
    fn spin_down_when_idle(&mut self, clock: Clock) {
        if !self.stopping {
            return;
        }
        match self.phase {
            Phase::Down | Phase::Shutdown(_) => {}
            Phase::Ready if !self.invokes.is_empty() => {}
            Phase::Init(_) | Phase::Ready => self.begin_shutdown(clock, ShutdownReason::Spindown),
        }
    }

    // ----- init -------------------------------------------------------------------------

    fn begin_init(&mut self, clock: Clock, job: Option<Invocation>, suppressed: bool) {
        self.generation += 1;
        self.extensions = Extensions::default();
        self.subscriptions.clear();
        self.timed_out.clear();
        if let Some(job) = job.as_ref().filter(|_| suppressed) {
            self.fact(Fact::Start {
                request_id: job.request_id.clone(),
            });
        }
        self.fact(Fact::InitStart { suppressed });
        let limit = if suppressed {
            self.config.timeout
        } else {
            self.config.init_timeout
        };
        self.phase = Phase::Init(Init {
            started: clock.now,
            deadline: clock.now + limit,
            job,
            suppressed,
            error: None,
            runtime_launched: false,
            runtime_ready: false,
        });
        match &self.config.extensions_dir {
            Some(_) if self.config.extensions_disabled => {
                self.note(format!(
                    "ironlambda-emulator: extensions are disabled ({} exists): none is launched",
                    crate::config::EXTENSIONS_DISABLED_MARKER
                ));
                self.launch_runtime_when_ready();
            }
            Some(_) => self.emit(Effect::DiscoverExtensions),
            None => self.launch_runtime_when_ready(),
        }
    }

    /// Starts every file of the extensions directory (protocol.md §4).
    fn on_extensions_found(&mut self, clock: Clock, found: Result<Vec<Arc<str>>, String>) {
        if !matches!(self.phase, Phase::Init(_)) {
            return;
        }
        let names = match found {
            Ok(names) if names.len() > MAX_EXTENSIONS => {
                let message = format!("{} extensions found: the limit is 10", names.len());
                return self.init_failed(clock, "Extension.LaunchError", message);
            }
            Ok(names) => names,
            Err(message) => return self.init_failed(clock, "Extension.LaunchError", message),
        };
        for (index, name) in names.into_iter().enumerate() {
            self.extensions.external.push(External {
                name,
                alive: true,
                registered: false,
            });
            self.emit(Effect::Launch(Who::Extension(index), self.generation));
        }
        self.launch_runtime_when_ready();
    }

    fn on_launch_failed(&mut self, clock: Clock, who: Who, error: String) {
        match who {
            Who::Runtime => {
                self.runtime_alive = false;
                self.init_failed(clock, "Runtime.InvalidEntrypoint", error);
            }
            Who::Extension(index) => {
                if let Some(e) = self.extensions.external.get_mut(index) {
                    e.alive = false;
                }
                self.init_failed(clock, "Extension.LaunchError", error);
            }
        }
    }

    /// Starts the runtime once every external extension has registered (protocol.md §3.1).
    fn launch_runtime_when_ready(&mut self) {
        let Phase::Init(init) = &mut self.phase else {
            return;
        };
        if init.runtime_launched || !self.extensions.externals_registered() {
            return;
        }
        init.runtime_launched = true;
        self.runtime_alive = true;
        self.effects
            .push(Effect::Launch(Who::Runtime, self.generation));
    }

    /// Init is done when the runtime called `/next` and every extension `/event/next`.
    fn finish_init_when_ready(&mut self, clock: Clock) {
        let Phase::Init(init) = &self.phase else {
            return;
        };
        if !init.runtime_ready || !self.extensions.all_done() {
            return;
        }
        let Phase::Init(init) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            return;
        };
        let took = clock.now.saturating_duration_since(init.started);
        self.fact(Fact::InitDone {
            suppressed: init.suppressed,
            duration: took,
        });
        match init.job {
            // The suppressed init was part of the invoke: its clock and START stand.
            Some(job) if init.suppressed => self.start_invoke(clock, job, Some(init.started), None),
            Some(job) => self.start_invoke(clock, job, None, Some(took)),
            None => self.unreported_init = Some(took),
        }
        self.spin_down_when_idle(clock);
    }

    /// Init failed. A waiting invoke gets a second init of its own, inside the invoke
    /// (protocol.md §3.1, edge-cases D8); when that one fails too, the invoke gets `message`
    /// under `error_type` (or the runtime's own `/init/error` body). Either way the
    /// environment resets.
    fn init_failed(&mut self, clock: Clock, error_type: &str, message: String) {
        let status = if error_type == "Sandbox.Timedout" {
            "timeout"
        } else {
            "error"
        };
        let Phase::Init(init) = std::mem::replace(&mut self.phase, Phase::Down) else {
            return;
        };
        let reported_type = if init.error.is_some() {
            "Runtime.InitError"
        } else {
            error_type
        };
        let took = clock.now.saturating_duration_since(init.started);
        self.fact(Fact::InitFailed {
            suppressed: init.suppressed,
            status,
            error_type: reported_type.to_owned(),
            duration: took,
        });
        let retry = match init.job {
            Some(job) if !init.suppressed && !self.stopping => Some(job),
            Some(job) => {
                let result = match init.error {
                    Some((body, content_type)) => {
                        InvokeResult::FunctionError { body, content_type }
                    }
                    None => {
                        let reason = message.clone();
                        self.fact(Fact::Failed {
                            request_id: job.request_id.clone(),
                            error_type: error_type.to_owned(),
                            reason,
                        });
                        let message = format!("RequestId: {} Error: {message}", job.request_id);
                        InvokeResult::platform_error(error_type, message)
                    }
                };
                let Invocation {
                    request_id, reply, ..
                } = job;
                self.answer_caller(reply, result);
                if init.suppressed {
                    self.fact(Fact::Report {
                        request_id,
                        duration: took,
                        init_duration: None,
                        status,
                        error_type: (status == "error").then(|| reported_type.to_owned()),
                    });
                }
                None
            }
            None => None,
        };
        self.begin_shutdown(clock, ShutdownReason::Failure);
        if let Phase::Shutdown(s) = &mut self.phase {
            s.retry = retry;
        } else if let Some(job) = retry {
            // Nothing was running: the retry can begin at once.
            self.begin_init(clock, Some(job), true);
        }
    }

    // ----- invoke -----------------------------------------------------------------------

    fn on_invoke(&mut self, clock: Clock, job: Invocation) {
        match self.phase {
            Phase::Down => self.begin_init(clock, Some(job), false),
            Phase::Ready => {
                let init = self.unreported_init.take();
                self.start_invoke(clock, job, None, init);
            }
            // The router only routes here when `can_take` said so.
            Phase::Init(_) | Phase::Shutdown(_) => self.answer_caller(
                job.reply,
                InvokeResult::platform_error(
                    "Runtime.Unavailable",
                    "The environment cannot take an invocation now".into(),
                ),
            ),
        }
    }

    /// Hands `job` to the runtime. `begun` is when a suppressed init began the invoke (its
    /// `START` written then, its timeout counting from then).
    fn start_invoke(
        &mut self,
        clock: Clock,
        job: Invocation,
        begun: Option<Instant>,
        init_duration: Option<Duration>,
    ) {
        let started = begun.unwrap_or(clock.now);
        let deadline = started + self.config.timeout;
        let event = Arc::new(Event {
            request_id: job.request_id,
            deadline_ms: clock.epoch_ms_at(deadline),
            invoked_function_arn: self.config.arn(),
            trace_id: job.trace_id,
            client_context: job.client_context,
            body: job.body,
        });
        if begun.is_none() {
            self.fact(Fact::Start {
                request_id: event.request_id.clone(),
            });
        }
        // INVOKE fan-out to the subscribed extensions (protocol.md §3.2), encoded only when
        // someone subscribed.
        if self.extensions.registered.iter().any(|r| r.invoke) {
            let extension_event = ExtensionEvent::Invoke(InvokeEvent {
                deadline_ms: event.deadline_ms,
                request_id: event.request_id.clone(),
                invoked_function_arn: event.invoked_function_arn.clone(),
                tracing: event.trace_id.as_ref().map(|t| Tracing {
                    kind: "X-Amzn-Trace-Id".into(),
                    value: t.clone(),
                }),
            });
            let extension_event =
                Bytes::from(serde_json::to_vec(&extension_event).unwrap_or_default());
            let deliveries = self.extensions.broadcast(&extension_event, |r| r.invoke);
            self.deliveries(deliveries);
        }
        let delivered = self.deliver(&event);
        self.invokes.push(Invoke {
            event,
            reply: job.reply,
            streaming: None,
            delivered,
            started,
            deadline,
            init_duration,
            answered: false,
            runtime_done: false,
            outcome: None,
        });
    }

    /// Hands the event to the first runtime `/next` caller still connected.
    fn deliver(&mut self, event: &Arc<Event>) -> bool {
        while let Some(w) = self.waiting.pop_front() {
            if !w.is_closed() {
                self.emit(Effect::Deliver(w, Ok(event.clone())));
                return true;
            }
        }
        false
    }

    /// Hands undelivered invocations to waiting `/next` calls, oldest first.
    fn deliver_waiting(&mut self) {
        for i in 0..self.invokes.len() {
            if self.invokes[i].delivered || self.invokes[i].answered {
                continue;
            }
            let event = self.invokes[i].event.clone();
            if !self.deliver(&event) {
                return;
            }
            self.invokes[i].delivered = true;
        }
    }

    /// Classic: the invoke is over when the runtime called `/next` and every INVOKE
    /// subscriber `/event/next` (protocol.md §3.2); only then may the next one start.
    fn finish_invoke_when_ready(&mut self, clock: Clock) {
        let done = match self.invokes.first() {
            Some(inv) => inv.answered && inv.runtime_done,
            None => false,
        };
        if !done || self.concurrency > 1 || !self.extensions.invoke_subscribers_done() {
            return;
        }
        let inv = self.invokes.remove(0);
        self.finish(clock, inv);
        self.spin_down_when_idle(clock);
    }

    /// `END` and `REPORT` for an invocation the runtime answered.
    fn finish(&mut self, clock: Clock, inv: Invoke) {
        self.emit(Effect::SampleMemory);
        let (status, error_type) = match inv.outcome {
            Some((status, error_type)) => (status, Some(error_type)),
            None => ("success", None),
        };
        self.fact(Fact::Report {
            request_id: inv.event.request_id.clone(),
            duration: clock.now.saturating_duration_since(inv.started),
            init_duration: inv.init_duration,
            status,
            error_type,
        });
    }

    // ----- calls ------------------------------------------------------------------------

    fn on_call(&mut self, clock: Clock, call: Call) {
        match call {
            Call::Runtime(RuntimeCall::Next(reply)) => self.on_runtime_next(clock, reply),
            Call::Runtime(RuntimeCall::Response {
                id,
                body,
                content_type,
                reply,
            }) => {
                let answer = self.on_result(clock, &id, body, content_type, None);
                self.emit(Effect::Answer(Answer::Done(reply, answer)));
            }
            Call::Runtime(RuntimeCall::Error {
                id,
                body,
                content_type,
                error_type,
                reply,
            }) => {
                let answer = self.on_result(clock, &id, body, content_type, Some(error_type));
                self.emit(Effect::Answer(Answer::Done(reply, answer)));
            }
            Call::Runtime(RuntimeCall::StreamStart {
                id,
                content_type,
                reply,
            }) => {
                let answer = self.on_stream_start(&id, content_type);
                self.emit(Effect::Answer(Answer::Stream(reply, answer)));
            }
            Call::Runtime(RuntimeCall::StreamEnd { id, body, reply }) => {
                let answer = self.on_stream_end(clock, &id, body);
                self.emit(Effect::Answer(Answer::Done(reply, answer)));
            }
            Call::Runtime(RuntimeCall::InitError {
                body,
                content_type,
                error_type,
                reply,
            }) => {
                let answer = self.on_init_error(body, content_type, error_type);
                self.emit(Effect::Answer(Answer::Done(reply, answer)));
            }
            Call::Extension(ExtensionCall::Register {
                name,
                body,
                account_id,
                reply,
            }) => {
                let answer = self.on_register(&name, body, account_id);
                self.emit(Effect::Answer(Answer::Registered(reply, answer)));
            }
            Call::Extension(ExtensionCall::Next { id, reply }) => {
                self.on_extension_next(clock, &id, reply)
            }
            Call::Extension(ExtensionCall::Error {
                id,
                phase,
                error_type,
                body,
                reply,
            }) => {
                let answer = self.on_extension_error(clock, &id, phase, error_type, body);
                self.emit(Effect::Answer(Answer::Done(reply, answer)));
            }
            Call::Extension(ExtensionCall::Subscribe {
                id,
                api,
                body,
                reply,
            }) => {
                let answer = self.on_subscribe(&id, api, body);
                self.emit(Effect::Answer(Answer::Done(reply, answer)));
            }
        }
    }

    fn on_runtime_next(&mut self, clock: Clock, reply: Reply<Arc<Event>>) {
        match &mut self.phase {
            Phase::Down => self.emit(Effect::Deliver(
                reply,
                Err(refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "No runtime is running in this environment",
                )),
            )),
            // No event will come; like Lambda, leave the call open until the process ends.
            Phase::Shutdown(_) => self.waiting.push_back(reply),
            Phase::Init(init) if init.error.is_some() => self.emit(Effect::Deliver(
                reply,
                Err((
                    StatusCode::FORBIDDEN,
                    invalid_state_transition("InitError", "Ready"),
                )),
            )),
            Phase::Init(init) => {
                init.runtime_ready = true;
                self.waiting.push_back(reply);
                self.finish_init_when_ready(clock);
            }
            Phase::Ready if self.concurrency > 1 => {
                self.waiting.retain(|w| !w.is_closed());
                let running = self.invokes.iter().filter(|i| !i.answered).count();
                if self.waiting.len() + running >= self.concurrency {
                    // §8: more polls than the environment's concurrency.
                    self.emit(Effect::Deliver(
                        reply,
                        Err(refuse(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "InternalServerError",
                            format!(
                                "Too many concurrent /next calls: the environment runs at most {} invocations at once",
                                self.concurrency
                            ),
                        )),
                    ));
                    return;
                }
                self.waiting.push_back(reply);
                self.deliver_waiting();
            }
            Phase::Ready => match self.invokes.first_mut() {
                None => self.waiting.push_back(reply),
                Some(inv) if inv.answered => {
                    inv.runtime_done = true;
                    self.waiting.push_back(reply);
                    self.finish_invoke_when_ready(clock);
                }
                // A second /next before answering gets the same event again (edge-cases A4).
                Some(inv) if inv.delivered => {
                    let event = inv.event.clone();
                    self.emit(Effect::Deliver(reply, Ok(event)));
                }
                Some(_) => {
                    self.waiting.push_back(reply);
                    self.deliver_waiting();
                }
            },
        }
    }

    /// `/response` (`error_type == None`) or `/error` for request `id`.
    fn on_result(
        &mut self,
        clock: Clock,
        id: &str,
        body: PostedBody,
        content_type: Option<HeaderValue>,
        error_type: Option<Option<String>>,
    ) -> Result<(), Refusal> {
        let to = if error_type.is_some() {
            "InvocationErrorResponse"
        } else {
            "InvocationResponse"
        };
        let index = self.running(id, to)?;
        let reported_type = error_type
            .clone()
            .map(|t| t.unwrap_or_else(|| "Runtime.Unknown".to_owned()));
        let (result, refusal) = match (body, error_type) {
            (PostedBody::Complete(body), None) => {
                (InvokeResult::Success { body, content_type }, None)
            }
            (PostedBody::Complete(body), Some(error_type)) => {
                // §1.4: with no body Lambda builds the error from the header.
                let body = if body.is_empty() {
                    error_json(
                        error_type.as_deref().unwrap_or("Runtime.Unknown"),
                        String::new(),
                    )
                } else {
                    body
                };
                (InvokeResult::FunctionError { body, content_type }, None)
            }
            (PostedBody::TooLarge(n), _) => (
                InvokeResult::platform_error(
                    "Function.ResponseSizeTooLarge",
                    format!(
                        "Response payload size ({n} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_PAYLOAD} bytes)."
                    ),
                ),
                Some((StatusCode::PAYLOAD_TOO_LARGE, request_entity_too_large())),
            ),
            (PostedBody::Truncated, _) => (
                InvokeResult::platform_error(
                    "Runtime.TruncatedResponse",
                    format!("RequestId: {id} Error: the runtime's response body ended early"),
                ),
                Some(truncated()),
            ),
        };
        let outcome = match (&refusal, &result, reported_type) {
            (Some(_), InvokeResult::FunctionError { body, .. }, _) => Some((
                "failure",
                error_type_of(body).unwrap_or_else(|| "Runtime.Unknown".to_owned()),
            )),
            (None, _, Some(error_type)) => Some(("error", error_type)),
            _ => None,
        };
        let reply = self.invokes[index].reply.take();
        self.answer_caller(reply, result);
        self.runtime_done(clock, index, outcome);
        refusal.map_or(Ok(()), Err)
    }

    /// The index of running invocation `id`, for a call that would move it to `to`;
    /// anything else is refused as Lambda refuses it (edge-cases A11–A13, protocol.md §8).
    fn running(&mut self, id: &str, to: &str) -> Result<usize, Refusal> {
        let found = self.invokes.iter().position(|i| i.event.request_id == id);
        if !matches!(self.phase, Phase::Ready) {
            return Err((StatusCode::BAD_REQUEST, invalid_request_id()));
        }
        match found {
            Some(i) if !self.invokes[i].answered && self.invokes[i].streaming.is_none() => Ok(i),
            // Managed instances answer every late or second result 400 (§8).
            Some(_) if self.concurrency > 1 => Err((StatusCode::BAD_REQUEST, invalid_request_id())),
            Some(i) if self.invokes[i].answered => Err((
                StatusCode::FORBIDDEN,
                invalid_state_transition("ResponseSent", to),
            )),
            Some(_) => Err((
                StatusCode::FORBIDDEN,
                invalid_state_transition("InvocationResponse", to),
            )),
            None if self.timed_out.remove(id) => Err((StatusCode::GONE, invoke_timeout())),
            None => Err((StatusCode::BAD_REQUEST, invalid_request_id())),
        }
    }

    /// The runtime has answered invocation `index`: `platform.runtimeDone` with `outcome`
    /// (`None` for success). A classic environment now waits for the runtime's next poll;
    /// a managed instance's invocation is over.
    fn runtime_done(
        &mut self,
        clock: Clock,
        index: usize,
        outcome: Option<(&'static str, String)>,
    ) {
        let inv = &mut self.invokes[index];
        let (status, error_type) = match &outcome {
            Some((status, error_type)) => (*status, Some(error_type.clone())),
            None => ("success", None),
        };
        inv.outcome = outcome;
        inv.answered = true;
        let fact = Fact::RuntimeDone {
            request_id: inv.event.request_id.clone(),
            status,
            error_type,
            duration: clock.now.saturating_duration_since(inv.started),
        };
        self.fact(fact);
        if self.concurrency > 1 {
            let inv = self.invokes.remove(index);
            self.finish(clock, inv);
            self.spin_down_when_idle(clock);
        }
    }

    /// A streamed `/response` began (protocol.md §1.3): the caller gets the stream now, and
    /// the invocation keeps running (its timeout still applies) until the body ends.
    fn on_stream_start(
        &mut self,
        id: &str,
        content_type: Option<HeaderValue>,
    ) -> Result<mpsc::Sender<Bytes>, Refusal> {
        let index = self.running(id, "InvocationResponse")?;
        // A few chunks in flight keep the pipe busy; more would only hold memory.
        let (feed, chunks) = mpsc::channel(8);
        let (end_tx, end) = oneshot::channel();
        let inv = &mut self.invokes[index];
        let reply = inv.reply.take();
        inv.streaming = Some(end_tx);
        self.answer_caller(
            reply,
            InvokeResult::Streaming(ResponseStream {
                content_type,
                chunks,
                end,
            }),
        );
        Ok(feed)
    }

    /// A streamed `/response` body ended: the caller learns how, and the runtime gets 202,
    /// or 413 past the streaming limit, or 400 for a truncated body.
    fn on_stream_end(&mut self, clock: Clock, id: &str, body: StreamedBody) -> Result<(), Refusal> {
        let found = self
            .invokes
            .iter()
            .position(|i| i.event.request_id == id && i.streaming.is_some());
        let Some(index) = found.filter(|_| matches!(self.phase, Phase::Ready)) else {
            // The platform already ended this invocation (a timeout, say).
            return Err((StatusCode::BAD_REQUEST, invalid_request_id()));
        };
        let (end, refusal) = match body {
            StreamedBody::Complete => (StreamEnd::Complete, None),
            StreamedBody::ErrorTrailers { error_type, body } => {
                let body = body.unwrap_or_else(|| error_json(&error_type, String::new()));
                (StreamEnd::Failed { error_type, body }, None)
            }
            StreamedBody::TooLarge(n) => (
                StreamEnd::platform(
                    "Function.ResponseSizeTooLarge",
                    format!(
                        "Response payload size ({n} bytes) exceeded maximum allowed payload size ({MAX_STREAMED_RESPONSE} bytes)."
                    ),
                ),
                Some((StatusCode::PAYLOAD_TOO_LARGE, streamed_response_too_large())),
            ),
            StreamedBody::Truncated => (
                StreamEnd::platform(
                    "Runtime.TruncatedResponse",
                    format!("RequestId: {id} Error: the runtime's response stream ended early"),
                ),
                Some(truncated()),
            ),
        };
        let outcome = match (&end, &refusal) {
            (StreamEnd::Complete, _) => None,
            (StreamEnd::Failed { error_type, .. }, None) => Some(("error", error_type.clone())),
            (StreamEnd::Failed { error_type, .. }, Some(_)) => {
                Some(("failure", error_type.clone()))
            }
        };
        if let Some(tx) = self.invokes[index].streaming.take() {
            self.emit(Effect::EndStream(tx, end));
        }
        self.runtime_done(clock, index, outcome);
        refusal.map_or(Ok(()), Err)
    }

    fn on_init_error(
        &mut self,
        body: PostedBody,
        content_type: Option<HeaderValue>,
        error_type: Option<String>,
    ) -> Result<(), Refusal> {
        let Phase::Init(init) = &mut self.phase else {
            let from = match (&self.phase, self.invokes.first()) {
                (Phase::Ready, None) => "Ready",
                (Phase::Ready, Some(i)) if i.answered => "ResponseSent",
                (Phase::Ready, Some(_)) => "Running",
                (Phase::Shutdown(_), _) => "Shutdown",
                _ => "Started",
            };
            return Err((
                StatusCode::FORBIDDEN,
                invalid_state_transition(from, "InitError"),
            ));
        };
        if init.error.is_some() || init.runtime_ready {
            let from = if init.runtime_ready {
                "Ready"
            } else {
                "InitError"
            };
            return Err((
                StatusCode::FORBIDDEN,
                invalid_state_transition(from, "InitError"),
            ));
        }
        let body = match body {
            PostedBody::Complete(b) if !b.is_empty() => b,
            PostedBody::Complete(_) => error_json(
                error_type.as_deref().unwrap_or("Runtime.Unknown"),
                String::new(),
            ),
            PostedBody::TooLarge(_) => {
                return Err((StatusCode::PAYLOAD_TOO_LARGE, request_entity_too_large()));
            }
            PostedBody::Truncated => return Err(truncated()),
        };
        init.error = Some((body, content_type));
        Ok(())
    }

    fn on_register(
        &mut self,
        name: &str,
        body: PostedBody,
        account_id: bool,
    ) -> Result<Registration, Refusal> {
        let window = match &self.phase {
            Phase::Init(init) if !init.runtime_ready => Window::Open,
            _ => Window::Closed,
        };
        let registered = self.extensions.register(name, &body, window)?;
        let id = registered.id.clone();
        let mut events = Vec::new();
        if registered.invoke {
            events.push("INVOKE".to_owned());
        }
        if registered.shutdown {
            events.push("SHUTDOWN".to_owned());
        }
        self.fact(Fact::ExtensionRegistered {
            name: name.to_owned(),
            events,
        });
        let response = RegisterResponse {
            function_name: self.config.name.clone(),
            function_version: "$LATEST".into(),
            handler: "bootstrap".into(),
            account_id: account_id.then(|| "000000000000".to_owned()),
        };
        self.launch_runtime_when_ready();
        Ok(Registration {
            id,
            body: Bytes::from(serde_json::to_vec(&response).unwrap_or_default()),
        })
    }

    fn on_extension_next(&mut self, clock: Clock, id: &str, reply: Reply<Bytes>) {
        match self.extensions.find(id) {
            Ok(ext) => {
                if let Some(delivery) = ext.next(reply) {
                    self.emit(Effect::DeliverExtension(delivery));
                }
            }
            Err(refusal) => {
                self.emit(Effect::Answer(Answer::Refused(reply, refusal)));
                return;
            }
        }
        self.finish_init_when_ready(clock);
        self.finish_invoke_when_ready(clock);
    }

    fn on_extension_error(
        &mut self,
        clock: Clock,
        id: &str,
        phase: ErrorPhase,
        error_type: String,
        body: PostedBody,
    ) -> Result<(), Refusal> {
        let ext = self.extensions.find(id)?;
        ext.failed = true;
        let name = ext.name.clone();
        let message = match &body {
            PostedBody::Complete(b) => serde_json::from_slice::<ErrorRequest>(b)
                .map(|e| e.error_message)
                .unwrap_or_default(),
            _ => String::new(),
        };
        let which = if phase == ErrorPhase::Init {
            "init"
        } else {
            "exit"
        };
        self.note(format!(
            "ironlambda-emulator: extension {name} reported an {which} error: {error_type}: {message}"
        ));
        let reason = format!("Extension {name} failed: {message}");
        match self.phase {
            Phase::Init(_) => self.init_failed(clock, &error_type, reason),
            Phase::Ready => self.fail_invokes(clock, &error_type, &reason, false),
            Phase::Down | Phase::Shutdown(_) => {}
        }
        Ok(())
    }

    fn on_subscribe(
        &mut self,
        id: &str,
        api: SubscriptionApi,
        body: PostedBody,
    ) -> Result<(), Refusal> {
        let prefix = match api {
            SubscriptionApi::Telemetry => "Telemetry",
            SubscriptionApi::Logs => "Logs",
        };
        let name = self.extensions.find(id)?.name.clone();
        if !matches!(self.phase, Phase::Init(_)) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                &format!("{prefix}.SubscriptionClosed"),
                "Subscriptions are only accepted during init",
            ));
        }
        let earlier = self
            .subscriptions
            .iter()
            .find(|(who, _)| who == id)
            .map(|(_, a)| *a);
        if earlier.is_some_and(|a| a != api) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                &format!("{prefix}.SubscriptionConflict"),
                "An extension may subscribe to the Telemetry API or the Logs API, not both",
            ));
        }
        let validation = if api == SubscriptionApi::Logs {
            "Logs.ValidationError"
        } else {
            "ValidationError"
        };
        let PostedBody::Complete(bytes) = body else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                validation,
                "The subscription body could not be read",
            ));
        };
        let subscription: TelemetrySubscription = serde_json::from_slice(&bytes).map_err(|e| {
            refuse(
                StatusCode::BAD_REQUEST,
                validation,
                format!("Invalid subscription: {e}"),
            )
        })?;
        subscription
            .validate(api)
            .map_err(|e| refuse(StatusCode::BAD_REQUEST, validation, e))?;
        if earlier.is_none() {
            self.subscriptions.push((id.to_owned(), api));
        }
        self.fact(Fact::Subscribed {
            name,
            api,
            types: subscription.types.clone(),
        });
        self.emit(Effect::Subscribe(id.to_owned(), subscription));
        Ok(())
    }

    // ----- failures ---------------------------------------------------------------------

    fn on_exit(&mut self, clock: Clock, who: Who, clean: bool, how: String) {
        match who {
            Who::Runtime => {
                self.runtime_alive = false;
                self.waiting.clear();
                let reason = if clean {
                    "Runtime exited without providing a reason".to_owned()
                } else {
                    format!("Runtime exited with error: {how}")
                };
                self.on_process_failure(clock, "Runtime.ExitError", reason, "the runtime");
            }
            Who::Extension(index) => {
                let Some(ext) = self.extensions.external.get_mut(index) else {
                    return;
                };
                ext.alive = false;
                let name = ext.name.clone();
                if !matches!(self.phase, Phase::Shutdown(_)) {
                    self.note(format!(
                        "ironlambda-emulator: extension {name} exited ({how})"
                    ));
                }
                self.on_process_failure(
                    clock,
                    "Extension.Crash",
                    format!("Extension {name} exited: {how}"),
                    &name,
                );
            }
        }
    }

    /// A process of the environment ended outside a shutdown: the environment resets.
    fn on_process_failure(&mut self, clock: Clock, error_type: &str, reason: String, who: &str) {
        match self.phase {
            Phase::Shutdown(_) => self.advance_shutdown(clock),
            Phase::Down => {}
            Phase::Init(_) => self.init_failed(clock, error_type, reason),
            Phase::Ready if self.invokes.is_empty() => {
                self.note(format!(
                    "ironlambda-emulator: {who} ended while idle ({reason}); the next invoke starts the environment again"
                ));
                self.begin_shutdown(clock, ShutdownReason::Failure);
            }
            Phase::Ready => self.fail_invokes(clock, error_type, &reason, true),
        }
    }

    /// Fails every invocation in flight with `error_type` (the callers of those the
    /// runtime has not answered get the error) and resets the environment.
    fn fail_invokes(&mut self, clock: Clock, error_type: &str, reason: &str, log: bool) {
        for mut inv in std::mem::take(&mut self.invokes) {
            let request_id = inv.event.request_id.clone();
            if !inv.answered {
                let message = format!("RequestId: {request_id} Error: {reason}");
                if log {
                    self.fact(Fact::Failed {
                        request_id: request_id.clone(),
                        error_type: error_type.to_owned(),
                        reason: reason.to_owned(),
                    });
                }
                self.fail_caller(&mut inv, error_type, message);
            } else if log {
                self.fact(Fact::Failed {
                    request_id: request_id.clone(),
                    error_type: error_type.to_owned(),
                    reason: reason.to_owned(),
                });
            }
            self.fact(Fact::Report {
                request_id,
                duration: clock.now.saturating_duration_since(inv.started),
                init_duration: inv.init_duration,
                status: "error",
                error_type: Some(error_type.to_owned()),
            });
        }
        self.begin_shutdown(clock, ShutdownReason::Failure);
    }

    /// The platform fails an invocation (timeout, crash, extension failure): the caller
    /// gets the error, after the bytes already streamed if a stream has begun.
    fn fail_caller(&mut self, inv: &mut Invoke, error_type: &str, message: String) {
        if let Some(end) = inv.streaming.take() {
            self.emit(Effect::EndStream(
                end,
                StreamEnd::platform(error_type, message),
            ));
        } else {
            let reply = inv.reply.take();
            self.answer_caller(reply, InvokeResult::platform_error(error_type, message));
        }
    }

    fn on_deadline(&mut self, clock: Clock) {
        match &self.phase {
            Phase::Init(init) if clock.now >= init.deadline => {
                let message = if init.suppressed {
                    format!(
                        "Task timed out after {:.2} seconds",
                        self.config.timeout.as_secs_f64()
                    )
                } else {
                    format!(
                        "Init phase timed out after {:.2} seconds",
                        self.config.init_timeout.as_secs_f64()
                    )
                };
                self.init_failed(clock, "Sandbox.Timedout", message);
            }
            Phase::Ready => self.time_out_invokes(clock),
            Phase::Shutdown(s) if clock.now >= s.next_tick => self.shutdown_tick(clock),
            Phase::Init(_) | Phase::Shutdown(_) | Phase::Down => {}
        }
    }

    /// Invocations past their deadline. Classic: the caller gets the timeout and the
    /// environment resets (A24). Managed instances: only that invocation fails; the runtime
    /// keeps its other invocations, and its late answer gets 410 once (§8).
    fn time_out_invokes(&mut self, clock: Clock) {
        let expired: Vec<usize> = (0..self.invokes.len())
            .filter(|&i| self.invokes[i].deadline <= clock.now)
            .collect();
        if expired.is_empty() {
            return;
        }
        self.emit(Effect::SampleMemory);
        let timeout = self.config.timeout;
        for &i in expired.iter().rev() {
            let mut inv = self.invokes.remove(i);
            let id = inv.event.request_id.clone();
            self.fact(Fact::TimedOut {
                request_id: id.clone(),
                timeout,
            });
            let message = format!(
                "RequestId: {id} Error: Task timed out after {:.2} seconds",
                timeout.as_secs_f64()
            );
            if !inv.answered {
                self.fail_caller(&mut inv, "Sandbox.Timedout", message);
            }
            self.fact(Fact::Report {
                request_id: id.clone(),
                duration: clock.now.saturating_duration_since(inv.started),
                init_duration: inv.init_duration,
                status: "timeout",
                error_type: None,
            });
            if self.concurrency > 1 {
                self.timed_out.insert(id);
            }
        }
        if self.concurrency > 1 {
            self.note(format!(
                "ironlambda-emulator: {} invocation(s) timed out; the environment keeps running its other invocations, as Lambda Managed Instances do",
                expired.len()
            ));
            self.spin_down_when_idle(clock);
        } else {
            self.begin_shutdown(clock, ShutdownReason::Timeout);
        }
    }

    // ----- shutdown ---------------------------------------------------------------------

    /// Starts the shutdown sequence (protocol.md §3.4): budget 0 ms with no extensions,
    /// 500 ms with only internal ones, 2,000 ms with external ones. The runtime gets SIGTERM
    /// (only when extensions are registered) and 300 ms, or 500 ms with an internal
    /// extension, before SIGKILL.
    fn begin_shutdown(&mut self, clock: Clock, reason: ShutdownReason) {
        let now = clock.now;
        self.emit(Effect::TelemetryShuttingDown);
        for mut inv in std::mem::take(&mut self.invokes) {
            // Invocations still in flight when a spin-down or reset comes: nobody else will
            // answer them.
            if !inv.answered {
                let message = format!(
                    "RequestId: {} Error: the environment shut down",
                    inv.event.request_id
                );
                self.fail_caller(&mut inv, "Runtime.Unavailable", message);
            }
        }
        let budget = if self.extensions.has_external() {
            Duration::from_millis(2000)
        } else if self.extensions.has_internal() {
            Duration::from_millis(500)
        } else {
            Duration::ZERO
        };
        let runtime_share = if self.extensions.has_internal() {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(300)
        };
        let graceful = !self.extensions.registered.is_empty();
        let mut next_tick = now + REAP_LIMIT;
        let mut runtime_killed = true;
        if self.runtime_alive {
            if graceful {
                self.emit(Effect::Signal(Who::Runtime, Signal::Terminate));
                runtime_killed = false;
                next_tick = now + runtime_share.min(budget);
            } else {
                self.emit(Effect::Signal(Who::Runtime, Signal::Kill));
            }
        }
        self.phase = Phase::Shutdown(Shutdown {
            reason,
            retry: None,
            deadline: now + budget,
            deadline_ms: clock.epoch_ms_at(now + budget),
            stage: Stage::Runtime,
            next_tick,
            runtime_killed,
        });
        self.advance_shutdown(clock);
    }

    /// Moves the shutdown on as processes exit.
    fn advance_shutdown(&mut self, clock: Clock) {
        let Phase::Shutdown(s) = &mut self.phase else {
            return;
        };
        if s.stage == Stage::Runtime && !self.runtime_alive {
            // The runtime is gone: SHUTDOWN to the subscribers, SIGKILL to the others.
            s.stage = Stage::Extensions;
            s.next_tick = s.deadline;
            let event = ExtensionEvent::Shutdown(ShutdownEvent {
                shutdown_reason: s.reason.clone(),
                deadline_ms: s.deadline_ms,
            });
            let event = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
            let deliveries = self
                .extensions
                .broadcast(&event, |r| r.shutdown && !r.internal);
            self.deliveries(deliveries);
            for index in self.extensions.running_externals_without_shutdown() {
                self.emit(Effect::Signal(Who::Extension(index), Signal::Kill));
            }
        }
        if self.runtime_alive || !self.extensions.externals_exited() {
            return;
        }
        let Phase::Shutdown(s) = std::mem::replace(&mut self.phase, Phase::Down) else {
            return;
        };
        self.emit(Effect::TelemetryClose);
        self.extensions.retire();
        self.waiting.clear();
        if let Some(job) = s.retry {
            self.begin_init(clock, Some(job), true);
        }
    }

    fn shutdown_tick(&mut self, clock: Clock) {
        let Phase::Shutdown(s) = &mut self.phase else {
            return;
        };
        match s.stage {
            Stage::Runtime if !s.runtime_killed => {
                s.runtime_killed = true;
                s.next_tick = clock.now + REAP_LIMIT;
                self.emit(Effect::Signal(Who::Runtime, Signal::Kill));
            }
            Stage::Extensions => {
                s.stage = Stage::Reaping;
                s.next_tick = clock.now + REAP_LIMIT;
                for index in self.extensions.running_externals() {
                    self.emit(Effect::Signal(Who::Extension(index), Signal::Kill));
                }
            }
            Stage::Runtime | Stage::Reaping => {
                // A process did not go away even after SIGKILL: the environment moves on.
                self.note(
                    "ironlambda-emulator: a process did not exit after SIGKILL; giving up on it"
                        .into(),
                );
                self.emit(Effect::Abandon);
                self.runtime_alive = false;
                for e in &mut self.extensions.external {
                    e.alive = false;
                }
            }
        }
        self.advance_shutdown(clock);
    }
}

#[cfg(test)]
mod tests;
