//! One execution environment: the lifecycle state machine (protocol.md §1.7, §3).
//!
//! A single task owns the runtime process and every piece of lifecycle state. The HTTP
//! handlers of the Invoke API and the Runtime API only send it messages and wait for its
//! answer, so each rule (which call is allowed when, what the caller gets on a crash or a
//! timeout) is decided in exactly one place, in the order events really happened.
//!
//! ```text
//! Down --invoke--> Init --/next--> Running --/response|/error--> PostInvoke --/next--> Ready
//!   ^               |                 |                              |                  |
//!   +-- exit, init error, timeout ----+------------------------------+     invoke ------+--> Running
//! ```

use std::collections::VecDeque;
use std::future::pending;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use ironlambda_api_client::wire::{
    ApiErrorBody, ErrorRequest, MAX_RESPONSE_PAYLOAD, invalid_request_id, invalid_state_transition,
    request_entity_too_large,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;

use crate::config::FunctionConfig;
use crate::logs::Logs;
use crate::process::{RuntimeProcess, describe_exit};

/// An invocation waiting for, or being run by, the environment.
pub(crate) struct Invocation {
    pub(crate) request_id: String,
    pub(crate) body: Bytes,
    pub(crate) client_context: Option<String>,
    pub(crate) trace_id: Option<String>,
    /// `None` for asynchronous (`Event`) invocations: nobody waits for the result.
    pub(crate) reply: Option<oneshot::Sender<InvokeResult>>,
}

/// What the caller of an invocation gets.
#[derive(Debug)]
pub(crate) enum InvokeResult {
    /// The runtime posted `/response`.
    Success {
        body: Bytes,
        content_type: Option<HeaderValue>,
    },
    /// The runtime posted `/error`, crashed, timed out or failed to start.
    FunctionError {
        body: Bytes,
        content_type: Option<HeaderValue>,
    },
}

impl InvokeResult {
    /// A function error made by the platform (`Runtime.ExitError`, `Sandbox.Timedout`, …).
    fn platform_error(error_type: &str, message: String) -> Self {
        InvokeResult::FunctionError {
            body: error_json(error_type, message),
            content_type: Some(HeaderValue::from_static("application/json")),
        }
    }
}

fn error_json(error_type: &str, message: String) -> Bytes {
    let e = ErrorRequest {
        error_message: message,
        error_type: error_type.to_owned(),
        stack_trace: Vec::new(),
    };
    Bytes::from(serde_json::to_vec(&e).unwrap_or_default())
}

/// The event a `/next` call receives.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) request_id: String,
    pub(crate) deadline_ms: u64,
    pub(crate) invoked_function_arn: String,
    pub(crate) trace_id: Option<String>,
    pub(crate) client_context: Option<String>,
    pub(crate) body: Bytes,
}

/// An API refusal: status and `{"errorType","errorMessage"}`.
pub(crate) type Refusal = (StatusCode, ApiErrorBody);

/// A body posted to the Runtime API, read with a size limit.
pub(crate) enum PostedBody {
    Complete(Bytes),
    TooLarge(usize),
    /// The connection ended before the body did (edge-cases A16).
    Truncated,
}

/// A Runtime API call, forwarded by the HTTP handler.
pub(crate) enum RuntimeCall {
    Next(oneshot::Sender<Result<Arc<Event>, Refusal>>),
    Response {
        id: String,
        body: PostedBody,
        content_type: Option<HeaderValue>,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    Error {
        id: String,
        body: PostedBody,
        content_type: Option<HeaderValue>,
        error_type: Option<String>,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    InitError {
        body: PostedBody,
        content_type: Option<HeaderValue>,
        error_type: Option<String>,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
}

struct Init {
    started: Instant,
    deadline: Instant,
    job: Option<Invocation>,
    /// What the runtime posted to `/init/error`, served to the waiting invoke.
    error: Option<(Bytes, Option<HeaderValue>)>,
}

struct Invoke {
    event: Arc<Event>,
    reply: Option<oneshot::Sender<InvokeResult>>,
    delivered: bool,
    started: Instant,
    deadline: Instant,
    init_duration: Option<Duration>,
}

enum Phase {
    Down,
    Init(Init),
    Ready,
    Running(Invoke),
    PostInvoke(Invoke),
}

impl Phase {
    /// The runtime state names RIE uses in `InvalidStateTransition` messages.
    fn state_name(&self) -> &'static str {
        match self {
            Phase::Down | Phase::Init(_) => "Started",
            Phase::Ready => "Ready",
            Phase::Running(_) => "Running",
            Phase::PostInvoke(_) => "ResponseSent",
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            Phase::Init(i) => Some(i.deadline),
            Phase::Running(i) | Phase::PostInvoke(i) => Some(i.deadline),
            Phase::Down | Phase::Ready => None,
        }
    }
}

/// The environment task's state.
pub(crate) struct Environment {
    config: Arc<FunctionConfig>,
    runtime_api: String,
    logs: Logs,
    process: Option<RuntimeProcess>,
    /// `/next` calls waiting for an event.
    waiting: VecDeque<oneshot::Sender<Result<Arc<Event>, Refusal>>>,
    phase: Phase,
    /// Init duration of an eager init, reported with the first invoke.
    unreported_init: Option<Duration>,
    /// Peak memory of the current process, sampled while it is alive.
    peak_mb: u64,
}

impl Environment {
    pub(crate) fn new(config: Arc<FunctionConfig>, runtime_api: String, logs: Logs) -> Self {
        Environment {
            config,
            runtime_api,
            logs,
            process: None,
            waiting: VecDeque::new(),
            phase: Phase::Down,
            unreported_init: None,
            peak_mb: 0,
        }
    }

    /// Runs until `shutdown` fires, then stops the runtime.
    pub(crate) async fn run(
        mut self,
        mut calls: mpsc::Receiver<RuntimeCall>,
        mut invokes: mpsc::Receiver<Invocation>,
        mut shutdown: oneshot::Receiver<()>,
    ) {
        if self.config.eager_init {
            self.launch(None);
        }
        loop {
            let deadline = self.phase.deadline();
            let idle = matches!(self.phase, Phase::Down | Phase::Ready);
            tokio::select! {
                _ = &mut shutdown => break,
                Some(call) = calls.recv() => self.on_call(call),
                Some(job) = invokes.recv(), if idle => self.on_invoke(job),
                status = wait_exit(&mut self.process) => self.on_exit(status),
                _ = sleep_until_opt(deadline) => self.on_deadline().await,
            }
        }
        // No extensions: the shutdown budget is 0 ms, the runtime is killed at once (§3.4).
        self.kill().await;
    }

    fn launch(&mut self, job: Option<Invocation>) {
        self.logs
            .line("INIT_START Runtime Version: provided:al2023 (ironlambda-emulator)");
        match RuntimeProcess::launch(&self.config, &self.runtime_api, &self.logs) {
            Ok(p) => {
                self.process = Some(p);
                self.peak_mb = 0;
                let now = Instant::now();
                self.phase = Phase::Init(Init {
                    started: now,
                    deadline: now + self.config.init_timeout,
                    job,
                    error: None,
                });
            }
            Err(e) => {
                let path = self.config.executable.display();
                self.logs
                    .line(format!("ironlambda-emulator: cannot start {path}: {e}"));
                if let Some(job) = job {
                    let message =
                        format!("RequestId: {} Error: fork/exec {path}: {e}", job.request_id);
                    answer(
                        job.reply,
                        InvokeResult::platform_error("Runtime.InvalidEntrypoint", message),
                    );
                }
                self.phase = Phase::Down;
            }
        }
    }

    fn on_invoke(&mut self, job: Invocation) {
        match self.phase {
            Phase::Down => self.launch(Some(job)),
            _ => {
                let init = self.unreported_init.take();
                self.start_invoke(job, init);
            }
        }
    }

    fn start_invoke(&mut self, job: Invocation, init_duration: Option<Duration>) {
        let now = Instant::now();
        let timeout = self.config.timeout;
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(timeout)
            .as_millis() as u64;
        let event = Arc::new(Event {
            request_id: job.request_id,
            deadline_ms,
            invoked_function_arn: self.config.arn(),
            trace_id: job.trace_id,
            client_context: job.client_context,
            body: job.body,
        });
        self.logs.line(format!(
            "START RequestId: {} Version: $LATEST",
            event.request_id
        ));
        let delivered = self.deliver(&event);
        self.phase = Phase::Running(Invoke {
            event,
            reply: job.reply,
            delivered,
            started: now,
            deadline: now + timeout,
            init_duration,
        });
    }

    /// Hands the event to the first `/next` caller still connected.
    fn deliver(&mut self, event: &Arc<Event>) -> bool {
        while let Some(w) = self.waiting.pop_front() {
            if w.send(Ok(event.clone())).is_ok() {
                return true;
            }
        }
        false
    }

    fn on_call(&mut self, call: RuntimeCall) {
        match call {
            RuntimeCall::Next(reply) => self.on_next(reply),
            RuntimeCall::Response {
                id,
                body,
                content_type,
                reply,
            } => {
                let _ = reply.send(self.on_result(&id, body, content_type, None));
            }
            RuntimeCall::Error {
                id,
                body,
                content_type,
                error_type,
                reply,
            } => {
                let _ = reply.send(self.on_result(&id, body, content_type, Some(error_type)));
            }
            RuntimeCall::InitError {
                body,
                content_type,
                error_type,
                reply,
            } => {
                let _ = reply.send(self.on_init_error(body, content_type, error_type));
            }
        }
    }

    fn on_next(&mut self, reply: oneshot::Sender<Result<Arc<Event>, Refusal>>) {
        match std::mem::replace(&mut self.phase, Phase::Down) {
            Phase::Down => {
                let body = ApiErrorBody::new(
                    "InternalServerError",
                    "No runtime is running in this environment",
                );
                let _ = reply.send(Err((StatusCode::INTERNAL_SERVER_ERROR, body)));
            }
            Phase::Init(init) if init.error.is_some() => {
                let _ = reply.send(Err((
                    StatusCode::FORBIDDEN,
                    invalid_state_transition("InitError", "Ready"),
                )));
                self.phase = Phase::Init(init);
            }
            Phase::Init(init) => {
                // The first /next means init is done (protocol.md §3.1).
                let took = init.started.elapsed();
                self.waiting.push_back(reply);
                match init.job {
                    Some(job) => self.start_invoke(job, Some(took)),
                    None => {
                        self.unreported_init = Some(took);
                        self.phase = Phase::Ready;
                    }
                }
            }
            Phase::Ready => {
                self.waiting.push_back(reply);
                self.phase = Phase::Ready;
            }
            Phase::Running(mut inv) => {
                if inv.delivered {
                    // A second /next before answering gets the same event again (edge-cases A4).
                    let _ = reply.send(Ok(inv.event.clone()));
                } else {
                    self.waiting.push_back(reply);
                    inv.delivered = self.deliver(&inv.event);
                }
                self.phase = Phase::Running(inv);
            }
            Phase::PostInvoke(inv) => {
                self.waiting.push_back(reply);
                self.sample_memory();
                self.report(&inv, None);
                self.phase = Phase::Ready;
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
        let target = match std::mem::replace(&mut self.phase, Phase::Down) {
            Phase::Running(inv) if inv.event.request_id == id => inv,
            other => {
                let refusal = match &other {
                    Phase::PostInvoke(inv) if inv.event.request_id == id => {
                        let to = if error_type.is_some() {
                            "InvocationErrorResponse"
                        } else {
                            "InvocationResponse"
                        };
                        (
                            StatusCode::FORBIDDEN,
                            invalid_state_transition("ResponseSent", to),
                        )
                    }
                    _ => (StatusCode::BAD_REQUEST, invalid_request_id()),
                };
                self.phase = other;
                return Err(refusal);
            }
        };
        let mut inv = target;
        let (result, refusal) = match (body, error_type) {
            (PostedBody::Complete(body), None) => {
                (InvokeResult::Success { body, content_type }, None)
            }
            (PostedBody::Complete(body), Some(error_type)) => {
                // §1.4: with no body Lambda builds the error from the header.
                let body = if body.is_empty() {
                    let t = error_type.unwrap_or_else(|| "Runtime.Unknown".to_owned());
                    error_json(&t, String::new())
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
                Some((
                    StatusCode::BAD_REQUEST,
                    ApiErrorBody::new(
                        "TruncatedHTTPRequest",
                        "The HTTP request body was truncated",
                    ),
                )),
            ),
        };
        answer(inv.reply.take(), result);
        self.sample_memory();
        self.phase = Phase::PostInvoke(inv);
        refusal.map_or(Ok(()), Err)
    }

    fn on_init_error(
        &mut self,
        body: PostedBody,
        content_type: Option<HeaderValue>,
        error_type: Option<String>,
    ) -> Result<(), Refusal> {
        match &mut self.phase {
            Phase::Init(init) if init.error.is_none() => {
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
                        return Err((
                            StatusCode::BAD_REQUEST,
                            ApiErrorBody::new(
                                "TruncatedHTTPRequest",
                                "The HTTP request body was truncated",
                            ),
                        ));
                    }
                };
                init.error = Some((body, content_type));
                Ok(())
            }
            Phase::Init(_) => Err((
                StatusCode::FORBIDDEN,
                invalid_state_transition("InitError", "InitError"),
            )),
            other => Err((
                StatusCode::FORBIDDEN,
                invalid_state_transition(other.state_name(), "InitError"),
            )),
        }
    }

    fn on_exit(&mut self, status: std::io::Result<ExitStatus>) {
        self.process = None;
        self.waiting.clear();
        let how = match &status {
            Ok(s) => describe_exit(s),
            Err(e) => format!("unknown exit ({e})"),
        };
        let reason = |id: &str| match &status {
            Ok(s) if s.success() => {
                format!("RequestId: {id} Error: Runtime exited without providing a reason")
            }
            _ => format!("RequestId: {id} Error: Runtime exited with error: {how}"),
        };
        match std::mem::replace(&mut self.phase, Phase::Down) {
            Phase::Down => {}
            Phase::Init(init) => {
                let error_type = if init.error.is_some() {
                    "Runtime.InitError"
                } else {
                    "Runtime.ExitError"
                };
                self.logs.line(format!(
                    "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: {error_type}",
                    ms(init.started.elapsed())
                ));
                if let Some(job) = init.job {
                    let result = match init.error {
                        Some((body, content_type)) => {
                            InvokeResult::FunctionError { body, content_type }
                        }
                        None => {
                            let message = reason(&job.request_id);
                            self.logs.line(format!("{message}\nRuntime.ExitError"));
                            InvokeResult::platform_error("Runtime.ExitError", message)
                        }
                    };
                    answer(job.reply, result);
                }
            }
            Phase::Ready => {
                self.logs.line(format!(
                    "ironlambda-emulator: the runtime exited while idle ({how}); the next invoke starts it again"
                ));
            }
            Phase::Running(mut inv) => {
                let message = reason(&inv.event.request_id);
                self.logs.line(format!("{message}\nRuntime.ExitError"));
                answer(
                    inv.reply.take(),
                    InvokeResult::platform_error("Runtime.ExitError", message),
                );
                self.report(&inv, Some("error\tError Type: Runtime.ExitError"));
            }
            Phase::PostInvoke(inv) => {
                self.logs.line(format!(
                    "{}\nRuntime.ExitError",
                    reason(&inv.event.request_id)
                ));
                self.report(&inv, Some("error\tError Type: Runtime.ExitError"));
            }
        }
    }

    async fn on_deadline(&mut self) {
        self.sample_memory();
        self.kill().await;
        match std::mem::replace(&mut self.phase, Phase::Down) {
            Phase::Init(init) => {
                self.logs.line(format!(
                    "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: timeout",
                    ms(init.started.elapsed())
                ));
                if let Some(job) = init.job {
                    let message = format!(
                        "RequestId: {} Error: Init phase timed out after {:.2} seconds",
                        job.request_id,
                        self.config.init_timeout.as_secs_f64()
                    );
                    answer(
                        job.reply,
                        InvokeResult::platform_error("Sandbox.Timedout", message),
                    );
                }
            }
            Phase::Running(mut inv) | Phase::PostInvoke(mut inv) => {
                let secs = self.config.timeout.as_secs_f64();
                self.logs.line(format!(
                    "{} {} Task timed out after {secs:.2} seconds",
                    ironlambda_api_client::time::rfc3339_now(),
                    inv.event.request_id
                ));
                let message = format!(
                    "RequestId: {} Error: Task timed out after {secs:.2} seconds",
                    inv.event.request_id
                );
                answer(
                    inv.reply.take(),
                    InvokeResult::platform_error("Sandbox.Timedout", message),
                );
                self.report(&inv, Some("timeout"));
            }
            Phase::Down | Phase::Ready => {}
        }
    }

    async fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill().await;
        }
        self.waiting.clear();
    }

    fn sample_memory(&mut self) {
        if let Some(mb) = self
            .process
            .as_ref()
            .and_then(RuntimeProcess::max_memory_mb)
        {
            self.peak_mb = self.peak_mb.max(mb);
        }
    }

    /// END and REPORT lines, as Lambda writes them.
    fn report(&self, inv: &Invoke, status: Option<&str>) {
        let id = &inv.event.request_id;
        let duration = ms(inv.started.elapsed());
        let init = inv.init_duration.map(ms);
        // provided.* runtimes are billed for init as well (protocol.md; billed per 1 ms).
        let billed = (duration + init.unwrap_or(0.0)).ceil().max(1.0) as u64;
        let mut line = format!(
            "REPORT RequestId: {id}\tDuration: {duration:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.config.memory_mb, self.peak_mb
        );
        if let Some(init) = init {
            line.push_str(&format!("\tInit Duration: {init:.2} ms"));
        }
        if let Some(status) = status {
            line.push_str(&format!("\tStatus: {status}"));
        }
        self.logs.line(format!("END RequestId: {id}"));
        self.logs.line(line);
    }
}

fn answer(reply: Option<oneshot::Sender<InvokeResult>>, result: InvokeResult) {
    if let Some(reply) = reply {
        // The caller may have gone away; the invocation still ran (edge-cases A28).
        let _ = reply.send(result);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn wait_exit(process: &mut Option<RuntimeProcess>) -> std::io::Result<ExitStatus> {
    match process {
        Some(p) => p.wait().await,
        None => pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d.into()).await,
        None => pending().await,
    }
}
