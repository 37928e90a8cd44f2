//! One execution environment: the lifecycle state machine (protocol.md §1.7, §3).
//!
//! A single task owns every process and every piece of lifecycle state. The HTTP handlers
//! only send it messages and wait for its answer, so each rule (which call is allowed when,
//! what the caller gets on a crash or a timeout, when the next invoke may start) is decided
//! in exactly one place, in the order events really happened.
//!
//! ```text
//! Down --invoke--> Init --runtime /next + every extension /event/next--> Running
//! Running --/response|/error--> PostInvoke --runtime /next + INVOKE subscribers done--> Ready
//! Ready --invoke--> Running
//! any phase --timeout, crash, init failure, exit/error, stop--> Shutdown --all exited--> Down
//! ```

use std::collections::VecDeque;
use std::future::pending;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use ironlambda_api_client::telemetry::{
    DurationMetrics, ExtensionRecord, InitRecord, InvocationRecord, SubscriptionApi,
    SubscriptionRecord, TelemetryEvent, TelemetrySubscription, TelemetryType,
};
use ironlambda_api_client::wire::{
    ErrorRequest, MAX_RESPONSE_PAYLOAD, MAX_STREAMED_RESPONSE, invalid_request_id,
    invalid_state_transition, request_entity_too_large, streamed_response_too_large,
};
use ironlambda_api_client::{
    ExtensionEvent, InvokeEvent, RegisterResponse, ShutdownEvent, ShutdownReason, Tracing,
};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;

use crate::calls::{
    Call, ErrorPhase, Event, ExtensionCall, Invocation, InvokeResult, PostedBody, Refusal,
    Registration, Reply, ResponseStream, RuntimeCall, StreamEnd, StreamedBody, error_json,
    error_type_of, refuse, truncated,
};
use crate::config::FunctionConfig;
use crate::extensions::{Extensions, External, Window, discover};
use crate::logs::{Logs, Source};
use crate::process::{
    Exit, Launch, Process, Who, describe_exit, extension_environment, lambda_environment,
};
use crate::telemetry::TelemetryHub;

/// How long processes get to be reaped after SIGKILL before the environment gives up on them.
const REAP_LIMIT: Duration = Duration::from_secs(2);

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
    /// The runtime called `/next` after answering.
    runtime_done: bool,
    /// How the runtime answered, for `platform.report`: `error` with its errorType after
    /// `/error`, `failure` with the platform's type when the answer could not be taken;
    /// `None` for success.
    outcome: Option<(&'static str, String)>,
}

impl Invoke {
    /// The platform fails the invocation (timeout, crash, extension failure): the caller
    /// gets the error, after the bytes already streamed if a stream has begun.
    fn fail_caller(&mut self, error_type: &str, message: String) {
        if let Some(end) = self.streaming.take() {
            let _ = end.send(StreamEnd::platform(error_type, message));
        } else {
            answer(
                self.reply.take(),
                InvokeResult::platform_error(error_type, message),
            );
        }
    }
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
    Ready,
    Running(Invoke),
    PostInvoke(Invoke),
    Shutdown(Shutdown),
}

impl Phase {
    /// The runtime state names RIE uses in `InvalidStateTransition` messages.
    fn state_name(&self) -> &'static str {
        match self {
            Phase::Down | Phase::Init(_) => "Started",
            Phase::Ready => "Ready",
            Phase::Running(_) => "Running",
            Phase::PostInvoke(_) => "ResponseSent",
            Phase::Shutdown(_) => "Shutdown",
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Phase::Init(i) => Some(i.deadline),
            Phase::Running(i) | Phase::PostInvoke(i) => Some(i.deadline),
            Phase::Shutdown(s) => Some(s.next_tick),
            Phase::Down | Phase::Ready => None,
        }
    }
}

/// The environment task's state.
pub(crate) struct Environment {
    config: Arc<FunctionConfig>,
    runtime_api: String,
    logs: Logs,
    telemetry: Arc<TelemetryHub>,
    exits: mpsc::UnboundedSender<Exit>,
    /// Incremented at every init, so exits of an earlier generation are recognised.
    generation: u64,
    runtime: Option<Process>,
    /// Runtime `/next` calls waiting for an event.
    waiting: VecDeque<Reply<Arc<Event>>>,
    extensions: Extensions,
    phase: Phase,
    /// Init duration of an eager init, reported with the first invoke.
    unreported_init: Option<Duration>,
    /// Peak memory of the current runtime, sampled while it is alive.
    peak_mb: u64,
    /// The emulator is stopping: no new invokes, and the task ends once everything is down.
    stopping: bool,
}

fn epoch_ms_after(d: Duration) -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(d)
        .as_millis() as u64
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn answer(reply: Option<oneshot::Sender<InvokeResult>>, result: InvokeResult) {
    if let Some(reply) = reply {
        // The caller may have gone away; the invocation still ran (edge-cases A28).
        let _ = reply.send(result);
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

impl Environment {
    pub(crate) fn new(
        config: Arc<FunctionConfig>,
        runtime_api: String,
        logs: Logs,
        telemetry: Arc<TelemetryHub>,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> Self {
        Environment {
            config,
            runtime_api,
            logs,
            telemetry,
            exits,
            generation: 0,
            runtime: None,
            waiting: VecDeque::new(),
            extensions: Extensions::default(),
            phase: Phase::Down,
            unreported_init: None,
            peak_mb: 0,
            stopping: false,
        }
    }

    /// Runs until stopped, then shuts the environment down as Lambda spins one down.
    pub(crate) async fn run(
        mut self,
        mut calls: mpsc::Receiver<Call>,
        mut invokes: mpsc::Receiver<Invocation>,
        mut exits: mpsc::UnboundedReceiver<Exit>,
        mut stop: oneshot::Receiver<()>,
    ) {
        if self.config.eager_init {
            self.begin_init(None);
        }
        loop {
            if self.stopping && matches!(self.phase, Phase::Down) {
                return;
            }
            let deadline = self.phase.deadline();
            let idle = !self.stopping && matches!(self.phase, Phase::Down | Phase::Ready);
            tokio::select! {
                _ = &mut stop, if !self.stopping => self.on_stop(),
                Some(call) = calls.recv() => self.on_call(call),
                Some(job) = invokes.recv(), if idle => self.on_invoke(job),
                Some(exit) = exits.recv() => self.on_exit(exit),
                _ = sleep_until_opt(deadline) => self.on_deadline(),
            }
        }
    }

    /// Lambda spins down an idle environment, never one in the middle of an invocation:
    /// an invocation under way finishes first (its timeout still bounds it), then the
    /// environment shuts down.
    fn on_stop(&mut self) {
        self.stopping = true;
        self.spin_down_when_idle();
    }

    fn spin_down_when_idle(&mut self) {
        if !self.stopping {
            return;
        }
        match self.phase {
            Phase::Down | Phase::Shutdown(_) | Phase::Running(_) | Phase::PostInvoke(_) => {}
            Phase::Init(_) | Phase::Ready => self.begin_shutdown(ShutdownReason::Spindown),
        }
    }

    // ----- init -------------------------------------------------------------------------

    fn begin_init(&mut self, job: Option<Invocation>) {
        self.start_init(job, false);
    }

    /// The retry of a failed init inside the invoke `job` (edge-cases D8): `START` first,
    /// then init again, against the invoke's timeout instead of the init limit.
    fn begin_suppressed_init(&mut self, job: Invocation) {
        self.logs.line(format!(
            "START RequestId: {} Version: $LATEST",
            job.request_id
        ));
        self.start_init(Some(job), true);
    }

    fn start_init(&mut self, job: Option<Invocation>, suppressed: bool) {
        self.generation += 1;
        self.extensions = Extensions::default();
        self.peak_mb = 0;
        self.logs
            .line("INIT_START Runtime Version: provided:al2023 (ironlambda-emulator)");
        self.publish_platform(
            "platform.initStart",
            to_json(&self.init_record(suppressed, None, None)),
        );
        let now = Instant::now();
        let limit = if suppressed {
            self.config.timeout
        } else {
            self.config.init_timeout
        };
        self.phase = Phase::Init(Init {
            started: now,
            deadline: now + limit,
            job,
            suppressed,
            error: None,
            runtime_launched: false,
            runtime_ready: false,
        });
        if let Err(message) = self.launch_extensions() {
            self.init_failed("Extension.LaunchError", message);
            return;
        }
        self.launch_runtime_when_ready();
    }

    /// Starts every file of the extensions directory (protocol.md §4).
    fn launch_extensions(&mut self) -> Result<(), String> {
        let Some(dir) = self.config.extensions_dir.clone() else {
            return Ok(());
        };
        if self.config.extensions_disabled {
            self.logs.line(format!(
                "ironlambda-emulator: extensions are disabled ({} exists): none is launched",
                crate::config::EXTENSIONS_DISABLED_MARKER
            ));
            return Ok(());
        }
        let found = discover(&dir)
            .map_err(|e| format!("cannot read extensions directory {}: {e}", dir.display()))?;
        if found.len() > crate::extensions::MAX_EXTENSIONS {
            return Err(format!(
                "{} extensions in {}: the limit is 10",
                found.len(),
                dir.display()
            ));
        }
        let env = extension_environment(&self.config, &self.runtime_api);
        for (index, (name, path)) in found.into_iter().enumerate() {
            let launch = Launch {
                executable: &path,
                env: env.clone(),
                source: Source::Extension(name.clone()),
                who: Who::Extension(index),
                generation: self.generation,
            };
            let process = Process::spawn(launch, &self.logs, &self.exits)
                .map_err(|e| format!("cannot start extension {}: {e}", path.display()))?;
            self.extensions.external.push(External {
                name,
                process: Some(process),
                registered: false,
            });
        }
        Ok(())
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
        let launch = Launch {
            executable: &self.config.executable,
            env: lambda_environment(&self.config, &self.runtime_api),
            source: Source::Function,
            who: Who::Runtime,
            generation: self.generation,
        };
        match Process::spawn(launch, &self.logs, &self.exits) {
            Ok(p) => self.runtime = Some(p),
            Err(e) => {
                let path = self.config.executable.display();
                self.logs
                    .line(format!("ironlambda-emulator: cannot start {path}: {e}"));
                self.init_failed(
                    "Runtime.InvalidEntrypoint",
                    format!("fork/exec {path}: {e}"),
                );
            }
        }
    }

    /// Init is done when the runtime called `/next` and every extension `/event/next`.
    fn finish_init_when_ready(&mut self) {
        let Phase::Init(init) = &self.phase else {
            return;
        };
        if !init.runtime_ready || !self.extensions.all_done() {
            return;
        }
        let Phase::Init(init) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            return;
        };
        let took = init.started.elapsed();
        self.publish_platform(
            "platform.initRuntimeDone",
            to_json(&self.init_record(init.suppressed, Some("success"), None)),
        );
        let mut report = self.init_record(init.suppressed, Some("success"), None);
        report.metrics = Some(DurationMetrics {
            duration_ms: ms(took),
        });
        self.publish_platform("platform.initReport", to_json(&report));
        match init.job {
            // The suppressed init was part of the invoke: its clock and START stand.
            Some(job) if init.suppressed => self.start_invoke(job, Some(init.started), None),
            Some(job) => self.start_invoke(job, None, Some(took)),
            None => self.unreported_init = Some(took),
        }
    }

    /// Init failed. A waiting invoke gets a second init of its own, inside the invoke
    /// (protocol.md §3.1, edge-cases D8); when that one fails too, the invoke gets `message`
    /// under `error_type` (or the runtime's own `/init/error` body). Either way the
    /// environment resets.
    fn init_failed(&mut self, error_type: &str, message: String) {
        let status = if error_type == "Sandbox.Timedout" {
            "timeout"
        } else {
            "error"
        };
        let Phase::Init(init) = std::mem::replace(&mut self.phase, Phase::Down) else {
            return;
        };
        let posted = init.error.is_some();
        let reported_type = if posted {
            "Runtime.InitError"
        } else {
            error_type
        };
        let took = init.started.elapsed();
        let phase = if init.suppressed { "invoke" } else { "init" };
        let mut line = format!(
            "INIT_REPORT Init Duration: {:.2} ms\tPhase: {phase}\tStatus: {status}",
            ms(took)
        );
        if status == "error" {
            line.push_str(&format!("\tError Type: {reported_type}"));
        }
        self.logs.line(line);
        let mut report = self.init_record(init.suppressed, Some(status), Some(reported_type));
        report.metrics = Some(DurationMetrics {
            duration_ms: ms(took),
        });
        self.publish_platform("platform.initReport", to_json(&report));
        let retry = match init.job {
            Some(job) if !init.suppressed => Some(job),
            Some(job) => {
                let result = match init.error {
                    Some((body, content_type)) => {
                        InvokeResult::FunctionError { body, content_type }
                    }
                    None => {
                        let message = format!("RequestId: {} Error: {message}", job.request_id);
                        self.logs.line(format!("{message}\n{error_type}"));
                        InvokeResult::platform_error(error_type, message)
                    }
                };
                answer(job.reply, result);
                let shown = (status == "error").then_some(reported_type);
                self.report(&job.request_id, init.started, None, status, shown);
                None
            }
            None => None,
        };
        self.begin_shutdown(ShutdownReason::Failure);
        if let Phase::Shutdown(s) = &mut self.phase {
            s.retry = retry;
        } else if let Some(job) = retry {
            // Nothing was running: the retry can begin at once.
            self.begin_suppressed_init(job);
        }
    }

    fn init_record(
        &self,
        suppressed: bool,
        status: Option<&str>,
        error_type: Option<&str>,
    ) -> InitRecord {
        InitRecord {
            initialization_type: "on-demand".into(),
            phase: if suppressed { "invoke" } else { "init" }.into(),
            status: status.map(str::to_owned),
            error_type: error_type.map(str::to_owned),
            metrics: None,
        }
    }

    // ----- invoke -----------------------------------------------------------------------

    fn on_invoke(&mut self, job: Invocation) {
        match self.phase {
            Phase::Down => self.begin_init(Some(job)),
            _ => {
                let init = self.unreported_init.take();
                self.start_invoke(job, None, init);
            }
        }
    }

    /// Hands `job` to the runtime. `begun` is when a suppressed init began the invoke (its
    /// `START` written then, its timeout counting from then).
    fn start_invoke(
        &mut self,
        job: Invocation,
        begun: Option<Instant>,
        init_duration: Option<Duration>,
    ) {
        let now = begun.unwrap_or_else(Instant::now);
        let timeout = self.config.timeout;
        let event = Arc::new(Event {
            request_id: job.request_id,
            deadline_ms: epoch_ms_after(timeout.saturating_sub(now.elapsed())),
            invoked_function_arn: self.config.arn(),
            trace_id: job.trace_id,
            client_context: job.client_context,
            body: job.body,
        });
        if begun.is_none() {
            self.logs.line(format!(
                "START RequestId: {} Version: $LATEST",
                event.request_id
            ));
        }
        let start = InvocationRecord {
            request_id: event.request_id.clone(),
            version: Some("$LATEST".into()),
            ..InvocationRecord::default()
        };
        self.publish_platform("platform.start", to_json(&start));
        // INVOKE fan-out to the subscribed extensions (protocol.md §3.2).
        let extension_event = ExtensionEvent::Invoke(InvokeEvent {
            deadline_ms: event.deadline_ms,
            request_id: event.request_id.clone(),
            invoked_function_arn: event.invoked_function_arn.clone(),
            tracing: event.trace_id.as_ref().map(|t| Tracing {
                kind: "X-Amzn-Trace-Id".into(),
                value: t.clone(),
            }),
        });
        let extension_event = Bytes::from(serde_json::to_vec(&extension_event).unwrap_or_default());
        self.extensions.broadcast(&extension_event, |r| r.invoke);
        let delivered = self.deliver(&event);
        self.phase = Phase::Running(Invoke {
            event,
            reply: job.reply,
            streaming: None,
            delivered,
            started: now,
            deadline: now + timeout,
            init_duration,
            runtime_done: false,
            outcome: None,
        });
    }

    /// Hands the event to the first runtime `/next` caller still connected.
    fn deliver(&mut self, event: &Arc<Event>) -> bool {
        while let Some(w) = self.waiting.pop_front() {
            if w.send(Ok(event.clone())).is_ok() {
                return true;
            }
        }
        false
    }

    /// The invoke is over when the runtime called `/next` and every INVOKE subscriber
    /// `/event/next` (protocol.md §3.2); only then may the next one start.
    fn finish_invoke_when_ready(&mut self) {
        let Phase::PostInvoke(inv) = &self.phase else {
            return;
        };
        if !inv.runtime_done || !self.extensions.invoke_subscribers_done() {
            return;
        }
        let Phase::PostInvoke(inv) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            return;
        };
        self.sample_memory();
        // Reported before a waiting stop spins the environment down.
        match &inv.outcome {
            Some((status, error_type)) => self.report_invoke(&inv, status, Some(error_type)),
            None => self.report_invoke(&inv, "success", None),
        }
        self.spin_down_when_idle();
    }

    // ----- calls ------------------------------------------------------------------------

    fn on_call(&mut self, call: Call) {
        match call {
            Call::Runtime(RuntimeCall::Next(reply)) => self.on_runtime_next(reply),
            Call::Runtime(RuntimeCall::Response {
                id,
                body,
                content_type,
                reply,
            }) => {
                let _ = reply.send(self.on_result(&id, body, content_type, None));
            }
            Call::Runtime(RuntimeCall::Error {
                id,
                body,
                content_type,
                error_type,
                reply,
            }) => {
                let _ = reply.send(self.on_result(&id, body, content_type, Some(error_type)));
            }
            Call::Runtime(RuntimeCall::StreamStart {
                id,
                content_type,
                reply,
            }) => {
                let _ = reply.send(self.on_stream_start(&id, content_type));
            }
            Call::Runtime(RuntimeCall::StreamEnd { id, body, reply }) => {
                let _ = reply.send(self.on_stream_end(&id, body));
            }
            Call::Runtime(RuntimeCall::InitError {
                body,
                content_type,
                error_type,
                reply,
            }) => {
                let _ = reply.send(self.on_init_error(body, content_type, error_type));
            }
            Call::Extension(ExtensionCall::Register {
                name,
                body,
                account_id,
                reply,
            }) => {
                let _ = reply.send(self.on_register(&name, body, account_id));
            }
            Call::Extension(ExtensionCall::Next { id, reply }) => {
                self.on_extension_next(&id, reply)
            }
            Call::Extension(ExtensionCall::Error {
                id,
                phase,
                error_type,
                body,
                reply,
            }) => {
                let _ = reply.send(self.on_extension_error(&id, phase, error_type, body));
            }
            Call::Extension(ExtensionCall::Subscribe {
                id,
                api,
                body,
                reply,
            }) => {
                let _ = reply.send(self.on_subscribe(&id, api, body));
            }
        }
    }

    fn on_runtime_next(&mut self, reply: Reply<Arc<Event>>) {
        match &mut self.phase {
            Phase::Down => {
                let _ = reply.send(Err(refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "No runtime is running in this environment",
                )));
            }
            // No event will come; like Lambda, leave the call open until the process ends.
            Phase::Shutdown(_) => self.waiting.push_back(reply),
            Phase::Init(init) if init.error.is_some() => {
                let _ = reply.send(Err((
                    StatusCode::FORBIDDEN,
                    invalid_state_transition("InitError", "Ready"),
                )));
            }
            Phase::Init(init) => {
                init.runtime_ready = true;
                self.waiting.push_back(reply);
                self.finish_init_when_ready();
            }
            Phase::Ready => self.waiting.push_back(reply),
            Phase::Running(inv) if inv.delivered => {
                // A second /next before answering gets the same event again (edge-cases A4).
                let _ = reply.send(Ok(inv.event.clone()));
            }
            Phase::Running(_) => {
                self.waiting.push_back(reply);
                let Phase::Running(inv) = &self.phase else {
                    return;
                };
                let event = inv.event.clone();
                let delivered = self.deliver(&event);
                if let Phase::Running(inv) = &mut self.phase {
                    inv.delivered = delivered;
                }
            }
            Phase::PostInvoke(inv) => {
                inv.runtime_done = true;
                self.waiting.push_back(reply);
                self.finish_invoke_when_ready();
            }
        }
    }

    /// `/response` (`error_type == None`) or `/error` for request `id`.
    fn on_result(
        &mut self,
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
        let mut inv = self.take_running(id, to)?;
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
        answer(inv.reply.take(), result);
        self.runtime_done(inv, outcome);
        refusal.map_or(Ok(()), Err)
    }

    /// Takes the running invocation `id` out of the phase, for a call that would move it to
    /// `to`; anything else is refused as Lambda refuses it (edge-cases A11, A12).
    fn take_running(&mut self, id: &str, to: &str) -> Result<Invoke, Refusal> {
        match std::mem::replace(&mut self.phase, Phase::Down) {
            Phase::Running(inv) if inv.event.request_id == id && inv.streaming.is_none() => Ok(inv),
            other => {
                let refusal = match &other {
                    Phase::PostInvoke(inv) if inv.event.request_id == id => (
                        StatusCode::FORBIDDEN,
                        invalid_state_transition("ResponseSent", to),
                    ),
                    Phase::Running(inv) if inv.event.request_id == id => (
                        StatusCode::FORBIDDEN,
                        invalid_state_transition("InvocationResponse", to),
                    ),
                    _ => (StatusCode::BAD_REQUEST, invalid_request_id()),
                };
                self.phase = other;
                Err(refusal)
            }
        }
    }

    /// The runtime has answered: `platform.runtimeDone` with `outcome` (`None` for
    /// success), and the post-invoke phase begins.
    fn runtime_done(&mut self, mut inv: Invoke, outcome: Option<(&'static str, String)>) {
        let (status, error_type) = match &outcome {
            Some((status, error_type)) => (*status, Some(error_type.clone())),
            None => ("success", None),
        };
        inv.outcome = outcome;
        let done = InvocationRecord {
            request_id: inv.event.request_id.clone(),
            status: Some(status.into()),
            error_type,
            metrics: Some(json!({ "durationMs": ms(inv.started.elapsed()) })),
            ..InvocationRecord::default()
        };
        self.publish_platform("platform.runtimeDone", to_json(&done));
        self.sample_memory();
        self.phase = Phase::PostInvoke(inv);
    }

    /// A streamed `/response` began (protocol.md §1.3): the caller gets the stream now, and
    /// the invocation keeps running (its timeout still applies) until the body ends.
    fn on_stream_start(
        &mut self,
        id: &str,
        content_type: Option<HeaderValue>,
    ) -> Result<mpsc::Sender<Bytes>, Refusal> {
        let mut inv = self.take_running(id, "InvocationResponse")?;
        // A few chunks in flight keep the pipe busy; more would only hold memory.
        let (feed, chunks) = mpsc::channel(8);
        let (end_tx, end) = oneshot::channel();
        answer(
            inv.reply.take(),
            InvokeResult::Streaming(ResponseStream {
                content_type,
                chunks,
                end,
            }),
        );
        inv.streaming = Some(end_tx);
        self.phase = Phase::Running(inv);
        Ok(feed)
    }

    /// A streamed `/response` body ended: the caller learns how, and the runtime gets 202,
    /// or 413 past the streaming limit, or 400 for a truncated body.
    fn on_stream_end(&mut self, id: &str, body: StreamedBody) -> Result<(), Refusal> {
        let mut inv = match std::mem::replace(&mut self.phase, Phase::Down) {
            Phase::Running(inv) if inv.event.request_id == id && inv.streaming.is_some() => inv,
            other => {
                // The platform already ended this invocation (a timeout, say).
                self.phase = other;
                return Err((StatusCode::BAD_REQUEST, invalid_request_id()));
            }
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
        if let Some(tx) = inv.streaming.take() {
            let _ = tx.send(end);
        }
        self.runtime_done(inv, outcome);
        refusal.map_or(Ok(()), Err)
    }

    fn on_init_error(
        &mut self,
        body: PostedBody,
        content_type: Option<HeaderValue>,
        error_type: Option<String>,
    ) -> Result<(), Refusal> {
        let Phase::Init(init) = &mut self.phase else {
            return Err((
                StatusCode::FORBIDDEN,
                invalid_state_transition(self.phase.state_name(), "InitError"),
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
            PostedBody::Truncated => {
                return Err(truncated());
            }
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
        let record = ExtensionRecord {
            name: name.to_owned(),
            state: "Ready".into(),
            events,
        };
        self.publish_platform("platform.extension", to_json(&record));
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

    fn on_extension_next(&mut self, id: &str, reply: Reply<Bytes>) {
        match self.extensions.find(id) {
            Ok(ext) => ext.next(reply),
            Err(refusal) => {
                let _ = reply.send(Err(refusal));
                return;
            }
        }
        self.finish_init_when_ready();
        self.finish_invoke_when_ready();
    }

    fn on_extension_error(
        &mut self,
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
        self.logs.line(format!(
            "ironlambda-emulator: extension {name} reported an {which} error: {error_type}: {message}"
        ));
        let message = format!("Extension {name} failed: {message}");
        match &mut self.phase {
            Phase::Init(_) => self.init_failed(&error_type, message),
            Phase::Running(inv) => {
                let request_id = inv.event.request_id.clone();
                inv.fail_caller(
                    &error_type,
                    format!("RequestId: {request_id} Error: {message}"),
                );
                self.fail_invoke(&error_type);
            }
            Phase::PostInvoke(_) | Phase::Ready => self.fail_invoke(&error_type),
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
        if self.telemetry.subscribed_api(id).is_some_and(|a| a != api) {
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
        let record = SubscriptionRecord {
            name,
            state: "Subscribed".into(),
            types: subscription.types.clone(),
        };
        self.telemetry.subscribe(id, api, subscription);
        let kind = match api {
            SubscriptionApi::Telemetry => "platform.telemetrySubscription",
            SubscriptionApi::Logs => "platform.logsSubscription",
        };
        self.publish_platform(kind, to_json(&record));
        Ok(())
    }

    // ----- failures ---------------------------------------------------------------------

    fn on_exit(&mut self, exit: Exit) {
        if exit.generation != self.generation {
            return;
        }
        let how = match &exit.status {
            Ok(s) => describe_exit(s),
            Err(e) => format!("unknown exit ({e})"),
        };
        match exit.who {
            Who::Runtime => {
                self.runtime = None;
                self.waiting.clear();
                let clean = matches!(&exit.status, Ok(s) if s.success());
                let reason = if clean {
                    "Runtime exited without providing a reason".to_owned()
                } else {
                    format!("Runtime exited with error: {how}")
                };
                self.on_process_failure("Runtime.ExitError", reason, "the runtime");
            }
            Who::Extension(index) => {
                let Some(ext) = self.extensions.external.get_mut(index) else {
                    return;
                };
                ext.process = None;
                let name = ext.name.clone();
                if !matches!(self.phase, Phase::Shutdown(_)) {
                    self.logs.line(format!(
                        "ironlambda-emulator: extension {name} exited ({how})"
                    ));
                }
                self.on_process_failure(
                    "Extension.Crash",
                    format!("Extension {name} exited: {how}"),
                    &name,
                );
            }
        }
    }

    /// A process of the environment ended outside a shutdown: the environment resets.
    fn on_process_failure(&mut self, error_type: &str, reason: String, who: &str) {
        match &mut self.phase {
            Phase::Shutdown(_) => self.advance_shutdown(),
            Phase::Down => {}
            Phase::Init(_) => self.init_failed(error_type, reason),
            Phase::Ready => {
                self.logs.line(format!(
                    "ironlambda-emulator: {who} ended while idle ({reason}); the next invoke starts the environment again"
                ));
                self.begin_shutdown(ShutdownReason::Failure);
            }
            Phase::Running(inv) => {
                let message = format!("RequestId: {} Error: {reason}", inv.event.request_id);
                self.logs.line(format!("{message}\n{error_type}"));
                inv.fail_caller(error_type, message);
                self.fail_invoke(error_type);
            }
            Phase::PostInvoke(inv) => {
                self.logs.line(format!(
                    "RequestId: {} Error: {reason}\n{error_type}",
                    inv.event.request_id
                ));
                self.fail_invoke(error_type);
            }
        }
    }

    /// Ends the current invoke with an error report and resets the environment.
    fn fail_invoke(&mut self, error_type: &str) {
        if let Phase::Running(inv) | Phase::PostInvoke(inv) =
            std::mem::replace(&mut self.phase, Phase::Down)
        {
            self.report_invoke(&inv, "error", Some(error_type));
        }
        self.begin_shutdown(ShutdownReason::Failure);
    }

    fn on_deadline(&mut self) {
        match &mut self.phase {
            Phase::Init(init) => {
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
                self.init_failed("Sandbox.Timedout", message);
            }
            Phase::Running(_) | Phase::PostInvoke(_) => {
                self.sample_memory();
                let (Phase::Running(mut inv) | Phase::PostInvoke(mut inv)) =
                    std::mem::replace(&mut self.phase, Phase::Down)
                else {
                    return;
                };
                let secs = self.config.timeout.as_secs_f64();
                let id = inv.event.request_id.clone();
                let now = ironlambda_api_client::time::rfc3339_now();
                self.logs
                    .line(format!("{now} {id} Task timed out after {secs:.2} seconds"));
                let message =
                    format!("RequestId: {id} Error: Task timed out after {secs:.2} seconds");
                inv.fail_caller("Sandbox.Timedout", message);
                self.report_invoke(&inv, "timeout", None);
                self.begin_shutdown(ShutdownReason::Timeout);
            }
            Phase::Shutdown(_) => self.shutdown_tick(),
            Phase::Down | Phase::Ready => {}
        }
    }

    // ----- shutdown ---------------------------------------------------------------------

    /// Starts the shutdown sequence (protocol.md §3.4): budget 0 ms with no extensions,
    /// 500 ms with only internal ones, 2,000 ms with external ones. The runtime gets SIGTERM
    /// (only when extensions are registered) and 300 ms, or 500 ms with an internal
    /// extension, before SIGKILL.
    fn begin_shutdown(&mut self, reason: ShutdownReason) {
        let now = Instant::now();
        self.telemetry.shutting_down();
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
        if let Some(runtime) = &self.runtime {
            if graceful {
                runtime.terminate();
                runtime_killed = false;
                next_tick = now + runtime_share.min(budget);
            } else {
                runtime.kill();
            }
        }
        self.phase = Phase::Shutdown(Shutdown {
            reason,
            retry: None,
            deadline: now + budget,
            deadline_ms: epoch_ms_after(budget),
            stage: Stage::Runtime,
            next_tick,
            runtime_killed,
        });
        self.advance_shutdown();
    }

    /// Moves the shutdown on as processes exit.
    fn advance_shutdown(&mut self) {
        let Phase::Shutdown(s) = &mut self.phase else {
            return;
        };
        if s.stage == Stage::Runtime && self.runtime.is_none() {
            // The runtime is gone: SHUTDOWN to the subscribers, SIGKILL to the others.
            s.stage = Stage::Extensions;
            s.next_tick = s.deadline;
            let event = ExtensionEvent::Shutdown(ShutdownEvent {
                shutdown_reason: s.reason.clone(),
                deadline_ms: s.deadline_ms,
            });
            let event = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
            self.extensions
                .broadcast(&event, |r| r.shutdown && !r.internal);
            self.extensions.kill_externals_without_shutdown();
        }
        if self.runtime.is_none() && self.extensions.externals_exited() {
            let retry = s.retry.take();
            self.telemetry.close();
            self.phase = Phase::Down;
            self.extensions.retire();
            self.waiting.clear();
            if let Some(job) = retry {
                self.begin_suppressed_init(job);
            }
        }
    }

    fn shutdown_tick(&mut self) {
        let Phase::Shutdown(s) = &mut self.phase else {
            return;
        };
        let now = Instant::now();
        match s.stage {
            Stage::Runtime if !s.runtime_killed => {
                if let Some(runtime) = &self.runtime {
                    runtime.kill();
                }
                s.runtime_killed = true;
                s.next_tick = now + REAP_LIMIT;
            }
            Stage::Extensions => {
                self.extensions.kill_externals();
                s.stage = Stage::Reaping;
                s.next_tick = now + REAP_LIMIT;
            }
            Stage::Runtime | Stage::Reaping => {
                // A process did not go away even after SIGKILL; dropping its handle tells
                // its supervisor to keep trying while the environment moves on.
                self.logs.line(
                    "ironlambda-emulator: a process did not exit after SIGKILL; giving up on it",
                );
                self.runtime = None;
                for e in &mut self.extensions.external {
                    e.process = None;
                }
            }
        }
        self.advance_shutdown();
    }

    // ----- reporting --------------------------------------------------------------------

    fn sample_memory(&mut self) {
        if let Some(mb) = self.runtime.as_ref().and_then(Process::max_memory_mb) {
            self.peak_mb = self.peak_mb.max(mb);
        }
    }

    fn report_invoke(&self, inv: &Invoke, status: &str, error_type: Option<&str>) {
        self.report(
            &inv.event.request_id,
            inv.started,
            inv.init_duration,
            status,
            error_type,
        );
    }

    /// END and REPORT lines, as Lambda writes them, and the `platform.report` record.
    fn report(
        &self,
        id: &str,
        started: Instant,
        init_duration: Option<Duration>,
        status: &str,
        error_type: Option<&str>,
    ) {
        let duration = ms(started.elapsed());
        let init = init_duration.map(ms);
        // provided.* runtimes are billed for init as well, per 1 ms.
        let billed = (duration + init.unwrap_or(0.0)).ceil().max(1.0) as u64;
        let mut line = format!(
            "REPORT RequestId: {id}\tDuration: {duration:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.config.memory_mb, self.peak_mb
        );
        if let Some(init) = init {
            line.push_str(&format!("\tInit Duration: {init:.2} ms"));
        }
        if status != "success" {
            line.push_str(&format!("\tStatus: {status}"));
        }
        if let Some(t) = error_type {
            line.push_str(&format!("\tError Type: {t}"));
        }
        self.logs.line(format!("END RequestId: {id}"));
        self.logs.line(line);
        let mut metrics = json!({
            "durationMs": duration,
            "billedDurationMs": billed,
            "memorySizeMB": self.config.memory_mb,
            "maxMemoryUsedMB": self.peak_mb,
        });
        if let Some(init) = init {
            metrics["initDurationMs"] = json!(init);
        }
        let record = InvocationRecord {
            request_id: id.to_owned(),
            status: Some(status.to_owned()),
            error_type: error_type.map(str::to_owned),
            metrics: Some(metrics),
            ..InvocationRecord::default()
        };
        self.publish_platform("platform.report", to_json(&record));
    }

    fn publish_platform(&self, kind: &str, record: serde_json::Value) {
        self.telemetry
            .publish(TelemetryType::Platform, TelemetryEvent::now(kind, record));
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d.into()).await,
        None => pending().await,
    }
}
