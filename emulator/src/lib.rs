//! A local AWS Lambda control plane, as a library and as the `ironlambda-emulator` CLI.
//!
//! It launches a function's executable the way Lambda launches `bootstrap`, serves it the
//! Runtime API, and serves callers the Invoke API, with production's status codes, limits,
//! timeouts and error bodies (see `shared/protocol`). Use it from tests:
//!
//! ```no_run
//! use std::time::Duration;
//! use ironlambda_emulator::Emulator;
//!
//! # async fn demo() -> std::io::Result<()> {
//! // In an integration test of the crate whose binary `hello` is the function, cargo
//! // says where it built it: `env!("CARGO_BIN_EXE_hello")`.
//! # let hello = std::env::var_os("HELLO").unwrap_or_default();
//! let emulator = Emulator::builder(hello)
//!     .timeout(Duration::from_secs(5))
//!     .start()
//!     .await?;
//! let answer = emulator.invoke(r#"{"name":"Ada"}"#).await?;
//! assert_eq!(answer.json()?["message"], "Hello, Ada!");
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

mod calls;
mod client;
mod config;
mod environment;
pub mod eventstream;
mod extensions;
mod extensions_api;
mod faults;
mod function_name;
mod function_url;
mod lifecycle;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, not a public API).

    /// The `{FunctionName}` of an Invoke API path.
    pub fn function_name(raw: &str) {
        let _ = crate::function_name::parse(raw);
    }
}
mod http_util;
mod invoke_api;
mod logs;
mod platform;
mod process;
#[cfg(test)]
mod properties;
mod runtime_api;
mod server;
mod telemetry;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use client::{
    EventStream, InvokeResponse, invoke_request, invoke_stream_request, send, send_streaming,
};
pub use config::{EXTENSIONS_DISABLED_MARKER, FunctionConfig};
pub use faults::{FaultSpecError, Faults};
pub use logs::Logs;

/// How many invocations may wait for an environment by default before callers get 429.
const QUEUE_LIMIT: usize = 1024;

/// A function added after the first.
#[derive(Debug, Clone)]
enum MoreFunction {
    /// Named, running this executable, with the first function's settings.
    Like(String, PathBuf),
    /// With settings of its own.
    Own(Box<FunctionConfig>),
}

/// Configures and starts an [`Emulator`].
#[derive(Debug, Clone)]
pub struct EmulatorBuilder {
    /// The first function; its settings (all but name and executable) apply to every one.
    function: FunctionConfig,
    /// Further functions: a name and an executable (with the first's settings), or a
    /// configuration of their own.
    more: Vec<MoreFunction>,
    addr: SocketAddr,
    echo: bool,
    faults: Faults,
    queue_limit: usize,
    /// Where the Function URL front door listens, when it does.
    url_port: Option<u16>,
}

impl EmulatorBuilder {
    /// The function's name (default: the executable's file name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.function.name = name.into();
        self
    }

    /// Serves one more function, `name` running `executable`, from the same emulator: the
    /// Invoke API routes by name, and each function gets environments of its own, under
    /// the same settings. Its lines are tagged `[name]`.
    pub fn function(mut self, name: impl Into<String>, executable: impl Into<PathBuf>) -> Self {
        self.more
            .push(MoreFunction::Like(name.into(), executable.into()));
        self
    }

    /// Serves one more function with limits of its own (timeout, memory, environment,
    /// concurrency…): `FunctionConfig::new(path)` and set its fields.
    pub fn function_config(mut self, config: FunctionConfig) -> Self {
        self.more.push(MoreFunction::Own(Box::new(config)));
        self
    }

    /// The function timeout (default 3 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.function.timeout = timeout;
        self
    }

    /// The init phase limit (default 10 s).
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.function.init_timeout = timeout;
        self
    }

    /// The memory size in MB (default 128).
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.function.memory_mb = mb;
        self
    }

    /// Adds an environment variable for the function.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.function.env.push((key.into(), value.into()));
        self
    }

    /// Launches every file of `dir` as an external extension, as Lambda does with
    /// `/opt/extensions`.
    pub fn extensions_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.function.extensions_dir = Some(dir.into());
        self
    }

    /// Starts the runtime at once instead of on the first invoke.
    pub fn eager_init(mut self, eager: bool) -> Self {
        self.function.eager_init = eager;
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Also print every log line to stdout (default: only keep them, see [`Emulator::logs`]).
    pub fn echo_logs(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    /// Runs up to `n` invocations at once in one environment, as Lambda Managed Instances do
    /// (default 1): the function gets `AWS_LAMBDA_MAX_CONCURRENCY=n`, each invoke goes to
    /// an idle runtime `/next`, and one invocation's timeout fails only that invocation.
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.function.max_concurrency = n.max(1);
        self
    }

    /// Runs up to `m` execution environments side by side (default 1), each with its own
    /// runtime and extension processes and its own Runtime API port; a new one starts when
    /// an invoke finds every running one busy, as Lambda scales a function out.
    pub fn environments(mut self, m: usize) -> Self {
        self.function.environments = m.max(1);
        self
    }

    /// How many invokes may wait while every environment is busy (default 1,024); past
    /// that, callers get Lambda's throttling answer, 429 `TooManyRequestsException`.
    pub fn queue_limit(mut self, n: usize) -> Self {
        self.queue_limit = n.max(1);
        self
    }

    /// Serves the functions as Function URLs on `port` (0: any free port) of the
    /// emulator's host: plain HTTP in, each request a payload 2.0 event, the function's
    /// answer the HTTP response (streamed ones streamed). With several functions, the
    /// first path segment picks the function. See [`Emulator::function_url`].
    pub fn url_port(mut self, port: u16) -> Self {
        self.url_port = Some(port);
        self
    }

    /// Makes the Runtime API misbehave on purpose (see [`Faults`]), to see how a function
    /// copes with a broken control plane.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Binds the listener and starts the environments' driver.
    pub async fn start(mut self) -> std::io::Result<Emulator> {
        let invalid =
            |message: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
        let mut functions = vec![self.function.clone()];
        for more in std::mem::take(&mut self.more) {
            functions.push(match more {
                MoreFunction::Like(name, executable) => FunctionConfig {
                    name,
                    executable,
                    ..self.function.clone()
                },
                MoreFunction::Own(config) => *config,
            });
        }
        let mut names = std::collections::HashSet::new();
        for f in &mut functions {
            if !function_name::is_valid_name(&f.name) {
                return Err(invalid(format!(
                    "{:?} is not a function name (1 to 64 letters, digits, - and _)",
                    f.name
                )));
            }
            if !names.insert(f.name.clone()) {
                return Err(invalid(format!("two functions are named {:?}", f.name)));
            }
            // Absolute paths: the function runs with its own directory as working directory.
            f.executable = std::fs::canonicalize(&f.executable)
                .map_err(|e| not_found("function executable", &f.executable, e))?;
            if !f.executable.is_file() {
                return Err(invalid(format!(
                    "function executable {} is not a file",
                    f.executable.display()
                )));
            }
            check_launchable(&f.executable)?;
            if let Some(dir) = &f.extensions_dir {
                let dir = std::fs::canonicalize(dir)
                    .map_err(|e| not_found("extensions directory", dir, e))?;
                if !dir.is_dir() {
                    return Err(invalid(format!(
                        "extensions directory {} is not a directory",
                        dir.display()
                    )));
                }
                f.extensions_disabled = dir
                    .parent()
                    .is_some_and(|opt| opt.join(config::EXTENSIONS_DISABLED_MARKER).exists());
                f.extensions_dir = Some(dir);
            }
        }
        let listener = TcpListener::bind(self.addr).await.map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another process listens there: pick another port with --port, or --port 0 for any free one)"
            } else {
                ""
            };
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}{hint}", self.addr))
        })?;
        let addr = listener.local_addr()?;
        let several = functions.len() > 1;
        let logs = Logs::new(
            self.echo,
            several || functions.iter().any(|f| f.environments > 1),
        );
        // The first function's first environment's Runtime API shares the Invoke API's
        // port; every other environment gets a port of its own, as each sandbox has its
        // own endpoint.
        let mut first_listener = Some(listener);
        let mut targets = Vec::new();
        let mut pending = Vec::new();
        let mut drivers = Vec::new();
        for function in functions {
            let config = Arc::new(function);
            let mut listeners = Vec::new();
            for _ in 0..config.environments {
                match first_listener.take() {
                    Some(l) => listeners.push(l),
                    None => listeners.push(TcpListener::bind((addr.ip(), 0)).await?),
                }
            }
            let outputs: Vec<_> = (0..listeners.len())
                .map(|index| {
                    let hub = Arc::new(telemetry::TelemetryHub::default());
                    (
                        logs.for_environment(&config, several, index, hub.clone()),
                        hub,
                    )
                })
                .collect();
            let runtime_apis = listeners
                .iter()
                .map(|l| l.local_addr().map(|a| a.to_string()))
                .collect::<std::io::Result<Vec<_>>>()?;
            let (calls_tx, calls_rx) = mpsc::channel(64);
            let (invokes_tx, invokes_rx) = mpsc::channel(self.queue_limit);
            let (exits_tx, exits_rx) = mpsc::unbounded_channel();
            let (stop_tx, stop_rx) = oneshot::channel();
            targets.push(invoke_api::InvokeTarget {
                config: config.clone(),
                invokes: invokes_tx,
                logs: outputs[0].0.clone(),
            });
            let environments =
                environment::Environments::new(config.clone(), runtime_apis, outputs, exits_tx);
            drivers.push((
                Some(stop_tx),
                tokio::spawn(environments.run(calls_rx, invokes_rx, exits_rx, stop_rx)),
            ));
            pending.push((config, listeners, calls_tx));
        }
        let targets = Arc::new(targets);
        let faults = Arc::new(self.faults);
        let mut servers = Vec::new();
        let mut url_addr = None;
        if let Some(port) = self.url_port {
            let at = SocketAddr::new(addr.ip(), port);
            let listener = TcpListener::bind(at).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot serve the Function URL on {at}: {e} (pick another --url-port, or 0 for any free one)"),
                )
            })?;
            url_addr = Some(listener.local_addr()?);
            servers.push(tokio::spawn(server::serve_function_urls(
                listener,
                targets.clone(),
            )));
        }
        for (config, listeners, calls_tx) in pending {
            for (index, listener) in listeners.into_iter().enumerate() {
                let shared = Arc::new(server::Shared {
                    functions: targets.clone(),
                    config: config.clone(),
                    faults: faults.clone(),
                    calls: calls::Calls {
                        environment: index,
                        tx: calls_tx.clone(),
                    },
                });
                servers.push(tokio::spawn(server::serve(listener, shared)));
            }
        }
        Ok(Emulator {
            addr,
            url_addr,
            functions: targets.iter().map(|t| t.config.clone()).collect(),
            logs,
            drivers,
            servers,
        })
    }
}

/// A path that cannot be used, said with what it was for.
fn not_found(what: &str, path: &std::path::Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(
        e.kind(),
        format!("{what} {} does not exist ({e})", path.display()),
    )
}

/// Refuses, at startup rather than at the first invoke, a function file Lambda could not
/// start: one without an execute bit, or one that is neither an ELF binary nor a script.
fn check_launchable(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let invalid = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("function executable {} {why}", path.display()),
        )
    };
    if std::fs::metadata(path)?.permissions().mode() & 0o111 == 0 {
        return Err(invalid("is not executable (chmod +x it)"));
    }
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)?.read(&mut magic)?;
    if !(magic[..n].starts_with(b"\x7fELF") || magic[..n].starts_with(b"#!")) {
        return Err(invalid(
            "is neither an ELF binary nor a script (#!): build it for Linux, or point --function at the binary cargo built",
        ));
    }
    Ok(())
}

/// A running emulator. Dropping it stops the servers and kills every function process.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    /// The Function URL front door, when one was asked for.
    url_addr: Option<SocketAddr>,
    functions: Vec<Arc<FunctionConfig>>,
    logs: Logs,
    /// Each function's driver, and how to tell it to stop.
    drivers: Vec<(Option<oneshot::Sender<()>>, JoinHandle<()>)>,
    servers: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// A builder for the function at `executable`.
    pub fn builder(executable: impl Into<PathBuf>) -> EmulatorBuilder {
        EmulatorBuilder {
            function: FunctionConfig::new(executable),
            more: Vec::new(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            echo: false,
            faults: Faults::none(),
            queue_limit: QUEUE_LIMIT,
            url_port: None,
        }
    }

    /// Where the emulator listens (Invoke API, and the first environment's Runtime API).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Function URL front door's base URL (`http://127.0.0.1:PORT`), when
    /// [`EmulatorBuilder::url_port`] asked for one. With several functions, append
    /// `/{name}` to reach one.
    pub fn function_url(&self) -> Option<String> {
        self.url_addr().map(|a| format!("http://{a}"))
    }

    /// Where the Function URL front door listens, when it does.
    pub fn url_addr(&self) -> Option<SocketAddr> {
        self.url_addr
    }

    /// The (first) function's configuration.
    pub fn config(&self) -> &FunctionConfig {
        &self.functions[0]
    }

    /// Every function served, in the order they were added.
    pub fn functions(&self) -> impl Iterator<Item = &FunctionConfig> {
        self.functions.iter().map(|f| &**f)
    }

    /// The Invoke API URL for the (first) function.
    pub fn invoke_url(&self) -> String {
        format!(
            "http://{}/2015-03-31/functions/{}/invocations",
            self.addr,
            self.config().name
        )
    }

    /// The log lines: the functions' output and START / END / REPORT.
    pub fn logs(&self) -> &Logs {
        &self.logs
    }

    /// Invokes the (first) function synchronously over real HTTP.
    pub async fn invoke(&self, payload: impl Into<Bytes>) -> std::io::Result<InvokeResponse> {
        self.invoke_function(&self.config().name, payload).await
    }

    /// Invokes function `name` synchronously over real HTTP.
    pub async fn invoke_function(
        &self,
        name: &str,
        payload: impl Into<Bytes>,
    ) -> std::io::Result<InvokeResponse> {
        send(self.addr, invoke_request(self.addr, name, payload)).await
    }

    /// Invokes the (first) function with InvokeWithResponseStream over real HTTP; the
    /// events are read as they arrive with [`EventStream::next_event`].
    pub async fn invoke_stream(&self, payload: impl Into<Bytes>) -> std::io::Result<EventStream> {
        send_streaming(
            self.addr,
            invoke_stream_request(self.addr, &self.config().name, payload),
        )
        .await
    }

    /// Shuts every environment down as Lambda spins one down (SHUTDOWN to extensions,
    /// SIGTERM to the runtime when extensions are registered, SIGKILL at the end of the
    /// budget), stops the servers, and waits for all of it.
    pub async fn shutdown(mut self) {
        for stop in self.drivers.iter_mut().filter_map(|(stop, _)| stop.take()) {
            let _ = stop.send(());
        }
        for (_, driver) in &mut self.drivers {
            let _ = driver.await;
        }
        for server in &mut self.servers {
            server.abort();
            let _ = server.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Aborting drops the drivers, and with them the children (kill_on_drop).
        for (_, driver) in &self.drivers {
            driver.abort();
        }
        for server in &self.servers {
            server.abort();
        }
    }
}
