//! The driver of the execution environments: one task that routes every invoke, owns
//! every process and performs what each environment's [`Lifecycle`] decides.
//!
//! The lifecycle decides (pure, in `lifecycle.rs`); this task does: it reads the extensions
//! directory, starts and signals processes, answers callers and API calls, and writes the
//! platform's lines and telemetry (`platform.rs`). Keeping every decision in one task, in
//! the order events happened, is what makes the rules hold under concurrency.
//!
//! Scaling out (`--environments M`): an invoke goes to an initialised environment with
//! room for it; when there is none, an environment that is down starts (on-demand init
//! with the invoke waiting), up to M; otherwise the invoke waits in the bounded queue in
//! front of this task, and callers beyond it get 429.

use std::collections::VecDeque;
use std::future::pending;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ironlambda_api_client::telemetry::TelemetryType;
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;

use crate::calls::{Call, Invocation};
use crate::config::FunctionConfig;
use crate::extensions::discover;
use crate::lifecycle::{Answer, Clock, Effect, Input, Lifecycle, Signal};
use crate::logs::{Logs, Source};
use crate::platform;
use crate::process::{
    Exit, Launch, Process, Who, describe_exit, extension_environment, lambda_environment,
};
use crate::telemetry::TelemetryHub;

/// One environment: its lifecycle, and the processes and outputs that belong to it.
struct Slot {
    index: usize,
    lifecycle: Lifecycle,
    /// The `AWS_LAMBDA_RUNTIME_API` its processes are given.
    runtime_api: String,
    logs: Logs,
    telemetry: Arc<TelemetryHub>,
    runtime: Option<Process>,
    /// External extension processes, in launch order, with the files they run.
    extensions: Vec<(PathBuf, Option<Process>)>,
    /// Peak memory of the current runtime, sampled while it is alive.
    peak_mb: u64,
}

/// The driver's state.
pub(crate) struct Environments {
    config: Arc<FunctionConfig>,
    slots: Vec<Slot>,
    exits: mpsc::UnboundedSender<Exit>,
    stopping: bool,
}

fn clock() -> Clock {
    Clock {
        now: Instant::now(),
        epoch_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64,
    }
}

impl Environments {
    /// Environments for `config`, the one at index `i` served at `runtime_apis[i]` and
    /// logging through `logs[i]`.
    pub(crate) fn new(
        config: Arc<FunctionConfig>,
        runtime_apis: Vec<String>,
        logs: Vec<(Logs, Arc<TelemetryHub>)>,
        exits: mpsc::UnboundedSender<Exit>,
    ) -> Self {
        let slots = runtime_apis
            .into_iter()
            .zip(logs)
            .enumerate()
            .map(|(index, (runtime_api, (logs, telemetry)))| Slot {
                index,
                lifecycle: Lifecycle::new(config.clone()),
                runtime_api,
                logs,
                telemetry,
                runtime: None,
                extensions: Vec::new(),
                peak_mb: 0,
            })
            .collect();
        Environments {
            config,
            slots,
            exits,
            stopping: false,
        }
    }

    /// Runs until stopped, then shuts every environment down as Lambda spins one down.
    pub(crate) async fn run(
        mut self,
        mut calls: mpsc::Receiver<(usize, Call)>,
        mut invokes: mpsc::Receiver<Invocation>,
        mut exits: mpsc::UnboundedReceiver<Exit>,
        mut stop: oneshot::Receiver<()>,
    ) {
        if self.config.eager_init {
            let effects = self.slots[0].lifecycle.start(clock());
            self.perform(0, effects);
        }
        loop {
            if self.stopping && self.slots.iter().all(|s| s.lifecycle.finished()) {
                return;
            }
            let deadline = self
                .slots
                .iter()
                .filter_map(|s| s.lifecycle.deadline())
                .min();
            let room = !self.stopping && self.slots.iter().any(|s| s.lifecycle.can_take());
            tokio::select! {
                _ = &mut stop, if !self.stopping => {
                    self.stopping = true;
                    for i in 0..self.slots.len() {
                        self.input(i, Input::Stop);
                    }
                }
                Some((environment, call)) = calls.recv() => {
                    if environment < self.slots.len() {
                        self.input(environment, Input::Call(call));
                    }
                }
                Some(job) = invokes.recv(), if room => self.route(job),
                Some(exit) = exits.recv() => self.on_exit(exit),
                _ = sleep_until_opt(deadline) => {
                    let now = Instant::now();
                    for i in 0..self.slots.len() {
                        if self.slots[i].lifecycle.deadline().is_some_and(|d| d <= now) {
                            self.input(i, Input::Tick);
                        }
                    }
                }
            }
        }
    }

    /// Sends `job` to an initialised environment with room, else to one that is down
    /// (which starts for it).
    fn route(&mut self, job: Invocation) {
        let target = self
            .slots
            .iter()
            .position(|s| s.lifecycle.ready())
            .or_else(|| self.slots.iter().position(|s| s.lifecycle.can_take()));
        match target {
            Some(i) => self.input(i, Input::Invoke(job)),
            // `room` said there was one; nothing changed since.
            None => refuse_unroutable(job),
        }
    }

    fn on_exit(&mut self, exit: Exit) {
        let Some(slot) = self.slots.get_mut(exit.environment) else {
            return;
        };
        let (clean, how) = match &exit.status {
            Ok(s) => (s.success(), describe_exit(s)),
            Err(e) => (false, format!("unknown exit ({e})")),
        };
        let current = exit.generation == slot.lifecycle.generation();
        if current {
            match exit.who {
                Who::Runtime => slot.runtime = None,
                Who::Extension(i) => {
                    if let Some((_, p)) = slot.extensions.get_mut(i) {
                        *p = None;
                    }
                }
            }
        }
        self.input(
            exit.environment,
            Input::Exited {
                who: exit.who,
                generation: exit.generation,
                clean,
                how,
            },
        );
    }

    fn input(&mut self, environment: usize, input: Input) {
        let effects = self.slots[environment].lifecycle.handle(clock(), input);
        self.perform(environment, effects);
    }

    /// Performs `effects` in order. An effect that produces an input (the extensions
    /// found, a failed launch) feeds it back at once, and what that decides is done before
    /// the rest.
    fn perform(&mut self, environment: usize, effects: Vec<Effect>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            let slot = &mut self.slots[environment];
            let feedback = slot.perform(&self.config, &self.exits, effect);
            if let Some(input) = feedback {
                let more = slot.lifecycle.handle(clock(), input);
                for e in more.into_iter().rev() {
                    queue.push_front(e);
                }
            }
        }
    }
}

/// A job that reached the router with nowhere to go: answered as throttled rather than
/// dropped. (The router only takes a job when an environment has room.)
fn refuse_unroutable(job: Invocation) {
    if let Some(reply) = job.reply {
        let _ = reply.send(crate::calls::InvokeResult::platform_error(
            "Runtime.Unavailable",
            "No environment can take this invocation".into(),
        ));
    }
}

impl Slot {
    /// Does one effect; returns the input it produced, if any.
    fn perform(
        &mut self,
        config: &FunctionConfig,
        exits: &mpsc::UnboundedSender<Exit>,
        effect: Effect,
    ) -> Option<Input> {
        match effect {
            Effect::DiscoverExtensions => {
                let dir = config.extensions_dir.as_deref()?;
                let found = discover(dir).map_err(|e| {
                    format!("cannot read extensions directory {}: {e}", dir.display())
                });
                self.extensions.clear();
                let names = found.map(|found| {
                    found
                        .into_iter()
                        .map(|(name, path)| {
                            self.extensions.push((path, None));
                            name
                        })
                        .collect()
                });
                return Some(Input::ExtensionsFound(names));
            }
            Effect::Launch(who, generation) => return self.launch(config, exits, who, generation),
            Effect::Signal(who, signal) => {
                let process = match who {
                    Who::Runtime => self.runtime.as_ref(),
                    Who::Extension(i) => self.extensions.get(i).and_then(|(_, p)| p.as_ref()),
                };
                match (process, signal) {
                    (Some(p), Signal::Terminate) => p.terminate(),
                    (Some(p), Signal::Kill) => p.kill(),
                    (None, _) => {}
                }
            }
            Effect::Abandon => {
                // Dropping the handles tells their supervisors to keep trying on their own.
                self.runtime = None;
                for (_, p) in &mut self.extensions {
                    *p = None;
                }
            }
            Effect::SampleMemory => {
                if let Some(mb) = self.runtime.as_mut().and_then(Process::max_memory_mb) {
                    self.peak_mb = self.peak_mb.max(mb);
                }
            }
            Effect::AnswerCaller(reply, result) => {
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Effect::EndStream(tx, end) => {
                let _ = tx.send(end);
            }
            Effect::Deliver(reply, event) => {
                let _ = reply.send(event);
            }
            Effect::DeliverExtension((reply, event)) => {
                let _ = reply.send(Ok(event));
            }
            Effect::Answer(answer) => match answer {
                Answer::Done(reply, result) => {
                    let _ = reply.send(result);
                }
                Answer::Registered(reply, result) => {
                    let _ = reply.send(result);
                }
                Answer::Stream(reply, result) => {
                    let _ = reply.send(result);
                }
                Answer::Refused(reply, refusal) => {
                    let _ = reply.send(Err(refusal));
                }
            },
            Effect::Platform(fact) => {
                for line in platform::log_lines(&fact, config, self.peak_mb) {
                    self.logs.line(line);
                }
                // Records are built only for someone: most runs have no subscriber.
                if self.telemetry.has_subscribers() {
                    for event in platform::telemetry(&fact, config, self.peak_mb) {
                        self.telemetry.publish(TelemetryType::Platform, event);
                    }
                }
            }
            Effect::Note(line) => self.logs.line(line),
            Effect::Subscribe(id, subscription) => self.telemetry.subscribe(&id, subscription),
            Effect::TelemetryShuttingDown => self.telemetry.shutting_down(),
            Effect::TelemetryClose => self.telemetry.close(),
        }
        None
    }

    fn launch(
        &mut self,
        config: &FunctionConfig,
        exits: &mpsc::UnboundedSender<Exit>,
        who: Who,
        generation: u64,
    ) -> Option<Input> {
        let (executable, env, source) = match who {
            Who::Runtime => {
                self.peak_mb = 0;
                (
                    config.executable.clone(),
                    lambda_environment(config, &self.runtime_api),
                    Source::Function,
                )
            }
            Who::Extension(i) => {
                let path = self.extensions.get(i)?.0.clone();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (
                    path,
                    extension_environment(config, &self.runtime_api),
                    Source::Extension(name.into()),
                )
            }
        };
        let launch = Launch {
            executable: &executable,
            env,
            source,
            who,
            environment: self.index,
            generation,
        };
        match Process::spawn(launch, &self.logs, exits) {
            Ok(process) => {
                match who {
                    Who::Runtime => self.runtime = Some(process),
                    Who::Extension(i) => self.extensions[i].1 = Some(process),
                }
                None
            }
            Err(e) => {
                let path = executable.display();
                if who == Who::Runtime {
                    self.logs
                        .line(format!("ironlambda-emulator: cannot start {path}: {e}"));
                    Some(Input::LaunchFailed(who, format!("fork/exec {path}: {e}")))
                } else {
                    Some(Input::LaunchFailed(
                        who,
                        format!("cannot start extension {path}: {e}"),
                    ))
                }
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d.into()).await,
        None => pending().await,
    }
}
