//! Helpers for the end-to-end tests: finding the built function binaries and starting an
//! emulator around them.

pub mod scripted;
pub mod streams;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::net::SocketAddr;
use std::process::Stdio;

use ironlambda_emulator::{Emulator, EmulatorBuilder, InvokeResponse, invoke_request, send};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A generous limit for anything the tests wait for, so a loaded 2-core machine never
/// turns a slow run into a failure; the tests never assert on timing.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Path of a binary built by `cargo build --workspace --bins` (what `make test` runs first),
/// found next to the running test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let dir = exe
        .parent()
        .map(|d| {
            if d.ends_with("deps") {
                d.parent().unwrap_or(d)
            } else {
                d
            }
        })
        .expect("the test executable is in a directory");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (`make test` does)",
        path.display()
    );
    path
}

/// A builder for an emulator running binary `name` with a patient timeout.
pub fn emulator(name: &str) -> EmulatorBuilder {
    Emulator::builder(binary(name))
        .timeout(PATIENCE)
        .init_timeout(PATIENCE)
}

/// An emulator whose `test-function` starts eagerly and never calls the Runtime API
/// (`IDLE=1`), so the test can play the runtime or extensions itself.
pub async fn idle_emulator() -> Emulator {
    emulator("test-function")
        .env("IDLE", "1")
        .eager_init(true)
        .start()
        .await
        .expect("the emulator starts")
}

/// How many times the runtime was started so far.
pub fn init_count(emulator: &Emulator) -> usize {
    emulator
        .logs()
        .lines()
        .iter()
        .filter(|l| l.starts_with("INIT_START"))
        .count()
}

/// Waits for the REPORT line of `request_id` and returns it.
pub async fn report_line(emulator: &Emulator, request_id: &str) -> String {
    let needle = format!("REPORT RequestId: {request_id}");
    emulator
        .logs()
        .wait_for(PATIENCE, |l| l.starts_with(&needle))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no REPORT for {request_id}; logs: {:#?}",
                emulator.logs().lines()
            )
        })
}

/// Waits for the log line that starts with `prefix` and returns it; fails the test with
/// the whole log when none comes.
pub async fn line(logs: &ironlambda_emulator::Logs, prefix: &str) -> String {
    logs.wait_for(PATIENCE, |l| l.starts_with(prefix))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no line starting with {prefix:?}; logs: {:#?}",
                logs.lines()
            )
        })
}

/// Checks that `answer` is Lambda's answer to an invocation that timed out after
/// `seconds` (`"1.00"`), and that its REPORT line says so.
pub async fn assert_timed_out(emulator: &Emulator, answer: &InvokeResponse, seconds: &str) {
    assert_eq!(answer.status, http::StatusCode::OK);
    assert_eq!(answer.function_error(), Some("Unhandled"));
    let body = answer.json().unwrap();
    let (error_type, message) = error_of(&body);
    assert_eq!(error_type, "Sandbox.Timedout");
    assert!(
        message.ends_with(&format!("Task timed out after {seconds} seconds")),
        "{message}"
    );
    let report = report_line(emulator, answer.request_id().unwrap()).await;
    assert!(report.ends_with("Status: timeout"), "{report}");
}

/// A scratch directory removed on drop, unique to this process and call.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Makes a fresh directory under the system temp dir.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ironlambda-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        Scratch(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An extensions directory (like `/opt/extensions`) holding links to the named binaries.
pub fn extensions_dir(binaries: &[&str]) -> Scratch {
    let dir = Scratch::new("extensions");
    for name in binaries {
        std::os::unix::fs::symlink(binary(name), dir.path().join(name))
            .expect("symlink in the temp dir");
    }
    dir
}

/// Invokes the emulator's function with `payload` on a task of its own, so the test can act
/// (as the runtime, or on an extension) while the invoke is in flight.
pub fn invoke_in_background(
    emu: &Emulator,
    payload: impl Into<String>,
) -> tokio::task::JoinHandle<InvokeResponse> {
    let addr = emu.addr();
    let request = invoke_request(addr, &emu.config().name, payload.into());
    tokio::spawn(async move { send(addr, request).await.expect("the emulator answers") })
}

/// The `ironlambda-emulator` command running as a process of its own.
pub struct Cli {
    /// The process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every line it printed so far.
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Cli {
    /// Waits until it printed a line satisfying `pred`, for at most [`PATIENCE`].
    pub async fn wait_for_line(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if let Some(l) = self.lines().into_iter().find(|l| pred(l)) {
                return Some(l);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// A copy of the lines printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Starts the `ironlambda-emulator` command with `args` (plus `--port 0`) as a process of
/// its own, in a process group of its own (as a shell starts a job), and returns once it
/// announced its address.
pub async fn start_cli(args: &[&std::ffi::OsStr]) -> Cli {
    start_cli_with(args, |_| {}).await
}

/// [`start_cli`], with `configure` applied to the command before it starts.
pub async fn start_cli_with(
    args: &[&std::ffi::OsStr],
    configure: impl FnOnce(&mut Command),
) -> Cli {
    let mut command = Command::new(binary("ironlambda-emulator"));
    command
        .args(args)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    configure(&mut command);
    let mut child = command.spawn().expect("the emulator command starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let first = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("the emulator announces its address in time")
        .expect("the emulator's output is readable")
        .expect("the emulator printed a line");
    let addr: SocketAddr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    let output = std::sync::Arc::new(std::sync::Mutex::new(vec![first]));
    let sink = output.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
    Cli {
        child,
        addr,
        output,
    }
}

/// A size field (`VmHWM`, `VmRSS`…) of `/proc/<pid>/status`, in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The peak resident memory (`VmHWM`) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// The pids of the direct children of process `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // The fields after the command name (which may hold spaces) in brackets.
                    let rest = stat.rsplit_once(')')?.1;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// The CPU time process `pid` has used so far (user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/stat: {e}"));
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of stat(5); `fields` starts at field 3.
    let ticks: f64 =
        fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
    // SAFETY: plain FFI call with no pointers.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second
}

/// The `errorType` and `errorMessage` of an error body.
pub fn error_of(body: &serde_json::Value) -> (&str, &str) {
    (
        body["errorType"].as_str().unwrap_or_default(),
        body["errorMessage"].as_str().unwrap_or_default(),
    )
}
