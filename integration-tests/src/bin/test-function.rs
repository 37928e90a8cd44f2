//! A function whose behaviour is chosen by its event, for the end-to-end tests:
//! `{"action":"echo","value":…}`, `sleep` (`ms`; answers when it started and ended, in
//! epoch ms), `fail` (`message`, optional `error_type`), `panic`, `exit`, `big`,
//! `context`, `print` (writes `text` to stdout as it is), `allocate` (touches `mb` MB, then
//! frees them before it answers), `trace` (runs a blocking task,
//! then tells where the trace header can be read), `explode_in_deserialize` (its
//! `Deserialize` impl panics), `explode_in_serialize` (its answer's `Serialize` impl
//! panics).
//! With `FAIL_INIT=<message>` in its environment, init fails with that message; with
//! `SLOW_INIT_MS=<n>` init takes that long; with `ON_SIGTERM_WRITE=<path>` it writes that
//! file and exits when it gets SIGTERM (without registering any extension); with
//! `ON_SIGTERM_IGNORE=1` it prints `got SIGTERM at <epoch ms>` and carries on; with
//! `IDLE=1` it never calls the Runtime API, so a test can play the runtime itself; with
//! `MULTI_THREAD=1` it runs on a multi-thread tokio runtime instead of a current-thread one;
//! with `LOCAL=1` it is a handler that is not `Send`, served by `run_local`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use ironlambda_runtime::{Context, Error, LocalHandler, handler_fn};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Action {
    Echo {
        value: Value,
    },
    Fail {
        message: String,
        #[serde(default)]
        error_type: Option<String>,
    },
    Panic {
        message: String,
    },
    Sleep {
        ms: u64,
    },
    Exit {
        code: i32,
    },
    Big {
        bytes: usize,
    },
    Allocate {
        mb: usize,
    },
    Context,
    Print {
        text: String,
    },
    Trace,
    ExplodeInDeserialize {
        value: Exploding,
    },
    ExplodeInSerialize,
}

/// A type whose `Deserialize` and `Serialize` impls panic, as a buggy user impl might.
#[derive(Debug)]
struct Exploding;

impl<'de> Deserialize<'de> for Exploding {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("Deserialize exploded");
    }
}

impl serde::Serialize for Exploding {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("Serialize exploded");
    }
}

/// What the function answers: JSON, or (for `explode_in_serialize`) a value whose
/// `Serialize` impl panics while the runtime writes the response, after part of it is
/// written (`["written before the panic",` …).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Answer {
    Json(Value),
    Explode(&'static str, Exploding),
}

async fn handle(action: Action, ctx: Context) -> Result<Answer, Error> {
    match action {
        Action::ExplodeInSerialize => Ok(Answer::Explode("written before the panic", Exploding)),
        other => answer(other, ctx).await.map(Answer::Json),
    }
}

async fn answer(action: Action, ctx: Context) -> Result<Value, Error> {
    match action {
        Action::Echo { value } => {
            tracing::info!("echoing {value}");
            Ok(json!({ "echo": value }))
        }
        Action::Fail {
            message,
            error_type,
        } => Err(Error::new(
            error_type.unwrap_or_else(|| "Function.Requested".to_owned()),
            message,
        )),
        Action::Panic { message } => panic!("{message}"),
        Action::Sleep { ms } => {
            let started_ms = epoch_ms();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(json!({
                "slept_ms": ms,
                "request_id": ctx.request_id,
                "started_ms": started_ms,
                "ended_ms": epoch_ms(),
                "pid": std::process::id(),
            }))
        }
        Action::Exit { code } => std::process::exit(code),
        Action::Big { bytes } => Ok(Value::String("x".repeat(bytes))),
        Action::Allocate { mb } => {
            // Every page written, so it is resident; freed (and, this large, unmapped)
            // before the answer: only the peak remembers it.
            let block = vec![1u8; mb << 20];
            let sum: u64 = block.iter().step_by(4096).map(|&b| u64::from(b)).sum();
            drop(std::hint::black_box(block));
            Ok(json!({ "touched_pages": sum }))
        }
        Action::Trace => {
            // A blocking task, as a DNS lookup or tokio::fs makes: the process gains a thread.
            let _ = tokio::task::spawn_blocking(|| ()).await;
            Ok(json!({
                "context": ctx.xray_trace_id,
                "task_local": ironlambda_runtime::trace_id(),
                "env": std::env::var("_X_AMZN_TRACE_ID").ok(),
            }))
        }
        Action::ExplodeInDeserialize { value } => {
            Ok(json!({ "unreachable": format!("{value:?}") }))
        }
        Action::ExplodeInSerialize => Ok(json!(null)),
        Action::Print { text } => {
            println!("{text}");
            Ok(json!({ "printed": text.len() }))
        }
        Action::Context => Ok(json!({
            "request_id": ctx.request_id,
            "arn": ctx.invoked_function_arn,
            "remaining_ms": ctx.remaining().map(|d| d.as_millis() as u64),
            "trace_id": ctx.xray_trace_id,
            "trace_env": std::env::var("_X_AMZN_TRACE_ID").ok(),
            "client_context": ctx.client_context,
            "function_name": ctx.config.function_name,
            "memory_mb": ctx.config.memory_mb,
            "pid": std::process::id(),
        })),
    }
}

/// `LOCAL=1`: [`handle`] behind state that is not `Send`, as `run` would refuse and
/// `run_local` serves.
struct Counting {
    calls: Rc<Cell<u64>>,
}

impl LocalHandler for Counting {
    type Event = Action;
    type Output = Answer;
    type Error = Error;

    async fn call(&self, action: Action, ctx: Context) -> Result<Answer, Error> {
        // An `Rc` held across the await: this future is not `Send`.
        let calls = self.calls.clone();
        calls.set(calls.get() + 1);
        let answer = handle(action, ctx).await;
        tracing::debug!("{} invocations so far", calls.get());
        answer
    }
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn main() -> Result<(), Error> {
    if std::env::var_os("IDLE").is_some() {
        std::thread::sleep(Duration::from_secs(3600));
        return Ok(());
    }
    // `MULTI_THREAD=1`: the multi-thread runtime `#[tokio::main]` gives.
    let mut runtime = if std::env::var_os("MULTI_THREAD").is_some() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = runtime.enable_all().build()?;
    if std::env::var_os("LOCAL").is_some() {
        return runtime.block_on(ironlambda_runtime::run_local_with_init(|_config| async {
            init().await?;
            Ok::<_, Error>(Counting {
                calls: Rc::new(Cell::new(0)),
            })
        }));
    }
    runtime.block_on(ironlambda_runtime::run_with_init(|_config| async {
        init().await?;
        Ok::<_, Error>(handler_fn(handle))
    }))
}

/// What the environment asks of init: signal handling, a slow or failing init.
async fn init() -> Result<(), Error> {
    if let Ok(path) = std::env::var("ON_SIGTERM_WRITE") {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            term.recv().await;
            println!("cleaning up after SIGTERM");
            let _ = std::fs::write(&path, "got SIGTERM");
            std::process::exit(0);
        });
    }
    if std::env::var_os("ON_SIGTERM_IGNORE").is_some() {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            while term.recv().await.is_some() {
                println!("got SIGTERM at {}", epoch_ms());
            }
        });
    }
    if let Some(ms) = std::env::var("SLOW_INIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match std::env::var("FAIL_INIT") {
        Ok(message) => Err(Error::new("Function.InitFailed", message)),
        Err(_) => Ok(()),
    }
}
