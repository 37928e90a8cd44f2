//! Running one function binary against the mock Runtime API and measuring it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::mock_api::MockApi;
use crate::stats::percentile;

/// The most any single run may take before the benchmark gives up on it.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// What one run of a case measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub invocations_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// The function's user+system CPU time per invocation (from its rusage).
    pub cpu_us: f64,
    /// The user-space part of `cpu_us`: the runtime's own work, without the kernel's.
    pub user_us: f64,
    pub peak_rss_kb: f64,
    /// Median time from serving the event to the first byte of the answer's body.
    pub first_byte_us: f64,
}

/// A benchmark case: an event and how many times to serve it.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: &'static str,
    pub event: Bytes,
    pub invocations: usize,
    /// Whether every answer is expected on `/error` rather than `/response`.
    pub expect_errors: bool,
    /// `AWS_LAMBDA_MAX_CONCURRENCY` for the subject (1: unset).
    pub concurrency: u32,
}

/// CPU time (from `wait4`) and peak RSS of a finished child.
struct Usage {
    cpu: Duration,
    user: Duration,
    peak_rss_kb: u64,
}

/// `VmHWM` of a live process: the peak RSS of its own address space. (`ru_maxrss` from
/// `wait4` is no use here: Linux folds the parent's high-water mark into it at exec.)
fn peak_rss_kb(pid: libc::pid_t) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// How subjects are started: directly, or under a profiler command (`valgrind …`), in
/// which case each run ends by closing the API so the subject exits and the profiler can
/// write its report, instead of by SIGKILL.
#[derive(Debug, Clone, Default)]
pub struct Launcher {
    pub wrapper: Vec<String>,
}

impl Launcher {
    fn command(&self, binary: &Path) -> Command {
        match self.wrapper.split_first() {
            None => Command::new(binary),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(binary);
                c
            }
        }
    }
}

fn spawn(
    launcher: &Launcher,
    binary: &Path,
    api: std::net::SocketAddr,
    concurrency: u32,
) -> std::io::Result<std::process::Child> {
    let mut command = launcher.command(binary);
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "echo")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/echo")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]bench")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
    if concurrency > 1 {
        command.env("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.to_string());
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// Waits for a subject started under a profiler to exit by itself, once the API is gone.
/// One that keeps retrying instead (the reference spins on a closed API) is SIGKILLed after
/// a grace period: the profiler's own child if it forked one (`perf stat`), so that the
/// profiler still writes its report, else the process itself (`valgrind` execs).
fn end_wrapped(child: &mut std::process::Child) -> std::io::Result<std::process::ExitStatus> {
    const GRACE: Duration = Duration::from_secs(10);
    let started = Instant::now();
    while started.elapsed() < GRACE {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id();
    let forked: Vec<libc::pid_t> =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    let targets = if forked.is_empty() {
        vec![pid as libc::pid_t]
    } else {
        forked
    };
    for target in targets {
        // SAFETY: a plain FFI call; the pids are our child or its children, not yet reaped.
        unsafe { libc::kill(target, libc::SIGKILL) };
    }
    child.wait()
}

/// SIGKILLs our child and reaps it with `wait4` to read its resource usage.
fn kill_and_reap(child: std::process::Child) -> std::io::Result<Usage> {
    let pid = child.id() as libc::pid_t;
    let peak_rss_kb = peak_rss_kb(pid);
    // The std handle neither kills nor waits on drop; from here the pid is reaped only below.
    drop(child);
    // SAFETY: plain FFI calls on our own, not yet reaped, child; `usage` is a valid out-pointer.
    let usage = unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::wait4(pid, &mut status, 0, &mut usage) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Usage {
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        user: tv(usage.ru_utime),
        peak_rss_kb,
    })
}

/// Serves `case` to a fresh process of `binary` and measures the run.
pub async fn run_case(launcher: &Launcher, binary: &Path, case: &Case) -> Result<Sample, String> {
    let api = MockApi::start(case.event.clone(), case.invocations)
        .await
        .map_err(|e| e.to_string())?;
    let mut child = spawn(launcher, binary, api.addr(), case.concurrency).map_err(|e| {
        // The program that failed to start is the wrapper when there is one.
        match launcher.wrapper.first() {
            Some(wrapper) => format!("{wrapper} (wrapping {}): {e}", binary.display()),
            None => format!("{}: {e}", binary.display()),
        }
    })?;
    let finished = tokio::time::timeout(RUN_LIMIT, api.finished()).await;
    if !launcher.wrapper.is_empty() {
        // Closing the API makes the subject give up and exit; the profiler then reports.
        let rec = api.stop();
        let _ = tokio::task::spawn_blocking(move || end_wrapped(&mut child)).await;
        finished.map_err(|_| "the profiled run did not finish".to_owned())?;
        return Ok(Sample {
            invocations_per_s: rec.latencies.len() as f64,
            ..Sample::default()
        });
    }
    let usage = kill_and_reap(child).map_err(|e| e.to_string())?;
    let rec = api.stop();
    finished.map_err(|_| {
        format!(
            "{} did not finish {} within {RUN_LIMIT:?}",
            binary.display(),
            case.name
        )
    })?;
    if case.expect_errors && rec.errors != case.invocations {
        return Err(format!(
            "{}: expected every answer on /error, got {}",
            case.name, rec.errors
        ));
    }
    let (Some(first), Some(last)) = (rec.first_served, rec.last_answered) else {
        return Err("nothing was served".into());
    };
    let mut latencies = rec.latencies;
    latencies.sort_unstable();
    let mut first_bytes = rec.first_bytes;
    first_bytes.sort_unstable();
    Ok(Sample {
        invocations_per_s: case.invocations as f64 / (last - first).as_secs_f64(),
        p50_us: percentile(&latencies, 0.50).as_secs_f64() * 1e6,
        p99_us: percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        cpu_us: usage.cpu.as_secs_f64() * 1e6 / case.invocations as f64,
        user_us: usage.user.as_secs_f64() * 1e6 / case.invocations as f64,
        peak_rss_kb: usage.peak_rss_kb as f64,
        first_byte_us: percentile(&first_bytes, 0.50).as_secs_f64() * 1e6,
    })
}

/// Process spawn → first `/next`, in microseconds.
pub async fn cold_start(binary: &Path) -> Result<f64, String> {
    let api = MockApi::start(Bytes::new(), 0)
        .await
        .map_err(|e| e.to_string())?;
    let spawned = Instant::now();
    let child = spawn(&Launcher::default(), binary, api.addr(), 1)
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let arrived = tokio::time::timeout(Duration::from_secs(30), api.first_next()).await;
    let _ = kill_and_reap(child);
    let rec = api.stop();
    arrived.map_err(|_| format!("{} never called /next", binary.display()))?;
    let first = rec.first_next.ok_or("no /next recorded")?;
    Ok((first - spawned).as_secs_f64() * 1e6)
}
