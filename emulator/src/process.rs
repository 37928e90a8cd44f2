//! Launching the runtime and extension processes with Lambda's environment, forwarding their
//! output, signalling them, and reporting their exits.
//!
//! Each process is owned by a supervisor task. The environment sends it signals through a
//! channel and learns of the exit through another, so a signal can never reach a pid that
//! has already been reaped (and perhaps reused): only the task holding the `Child` signals
//! it, and only while `Child::id()` says it has not been waited for.

use std::path::Path;
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::config::FunctionConfig;
use crate::logs::{Logs, Source};

/// Host variables passed through to the function when set, so SDK calls work locally.
const PASSED_THROUGH: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Runtime-only variables that extensions do not inherit (protocol.md §2.4).
const RUNTIME_ONLY: &[&str] = &[
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "LAMBDA_RUNTIME_DIR",
    "LAMBDA_TASK_ROOT",
];

/// Which process of the environment an exit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// The runtime (`bootstrap`).
    Runtime,
    /// The external extension at this index of the launch order.
    Extension(usize),
}

/// A process exit, tagged with the environment and init generation it belongs to.
#[derive(Debug)]
pub(crate) struct Exit {
    pub(crate) environment: usize,
    pub(crate) generation: u64,
    pub(crate) who: Who,
    pub(crate) status: std::io::Result<ExitStatus>,
}

/// A handle on a supervised process. Dropping it kills the process.
#[derive(Debug)]
pub(crate) struct Process {
    signals: mpsc::UnboundedSender<i32>,
    /// `/proc/<pid>/status` and `/proc/<pid>/stat`, opened once: the peak memory is looked
    /// at after every invocation, and a single `pread` costs a fifth of the syscalls of
    /// opening a file each time.
    status: Option<std::fs::File>,
    stat: Option<std::fs::File>,
    /// The page-fault count and the peak (MB) at the last reading of `status`.
    last_peak: Option<(u64, u64)>,
}

/// The environment Lambda gives a `provided.*` runtime (protocol.md §7).
pub(crate) fn lambda_environment(
    config: &FunctionConfig,
    runtime_api: &str,
) -> Vec<(String, String)> {
    let task_root = config
        .executable
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_string_lossy()
        .into_owned();
    let mut env: Vec<(String, String)> = vec![
        ("AWS_LAMBDA_RUNTIME_API".into(), runtime_api.into()),
        ("_HANDLER".into(), "bootstrap".into()),
        ("AWS_LAMBDA_FUNCTION_NAME".into(), config.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            config.memory_mb.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{}", config.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME".into(), log_stream_name()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
        ("AWS_REGION".into(), config.region.clone()),
        ("AWS_DEFAULT_REGION".into(), config.region.clone()),
        ("LAMBDA_TASK_ROOT".into(), task_root),
        ("LAMBDA_RUNTIME_DIR".into(), "/var/runtime".into()),
        ("TZ".into(), ":UTC".into()),
        ("LANG".into(), "en_US.UTF-8".into()),
        (
            "PATH".into(),
            "/usr/local/bin:/usr/bin:/bin:/opt/bin".into(),
        ),
    ];
    if config.max_concurrency > 1 {
        env.push((
            "AWS_LAMBDA_MAX_CONCURRENCY".into(),
            config.max_concurrency.to_string(),
        ));
    }
    for name in PASSED_THROUGH {
        if let Ok(v) = std::env::var(name) {
            env.push(((*name).into(), v));
        }
    }
    // User variables last, so they win (Lambda refuses reserved names; we let tests override).
    env.extend(config.env.iter().cloned());
    env
}

/// What an external extension inherits: the function's environment less the runtime-only
/// variables and every `_`-prefixed one (protocol.md §2.4).
pub(crate) fn extension_environment(
    config: &FunctionConfig,
    runtime_api: &str,
) -> Vec<(String, String)> {
    lambda_environment(config, runtime_api)
        .into_iter()
        .filter(|(k, _)| !k.starts_with('_') && !RUNTIME_ONLY.contains(&k.as_str()))
        .collect()
}

/// `YYYY/MM/DD/[$LATEST]<32 hex>`, like Lambda's log stream names.
fn log_stream_name() -> String {
    let (y, m, d) = ironlambda_api_client::time::today();
    format!(
        "{y:04}/{m:02}/{d:02}/[$LATEST]{}",
        uuid::Uuid::new_v4().simple()
    )
}

/// What to start and how to label its output.
pub(crate) struct Launch<'a> {
    pub(crate) executable: &'a Path,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) source: Source,
    pub(crate) who: Who,
    pub(crate) environment: usize,
    pub(crate) generation: u64,
}

impl Process {
    /// Starts a process with exactly `launch.env`, its output going to `logs`, and reports
    /// its exit on `exits`.
    pub(crate) fn spawn(
        launch: Launch<'_>,
        logs: &Logs,
        exits: &mpsc::UnboundedSender<Exit>,
    ) -> std::io::Result<Self> {
        let mut cmd = Command::new(launch.executable);
        cmd.env_clear()
            .envs(launch.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: Ctrl-C in the emulator's terminal (SIGINT to the
            // terminal's foreground group) must not reach it before SHUTDOWN does, and
            // whatever it forks can be ended with it.
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = launch
            .executable
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn()?;
        if let Some(out) = child.stdout.take() {
            forward(out, logs.clone(), launch.source.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, logs.clone(), launch.source);
        }
        let pid = child.id();
        let (signals, mut signal_rx) = mpsc::unbounded_channel::<i32>();
        let exits = exits.clone();
        let (who, environment, generation) = (launch.who, launch.environment, launch.generation);
        tokio::spawn(async move {
            // Whatever way this task ends (the process exited, or the emulator dropped
            // it), no process the child started outlives it.
            let _group = pid.map(GroupKiller);
            let mut handle_open = true;
            let status = loop {
                tokio::select! {
                    status = child.wait() => break status,
                    sig = signal_rx.recv(), if handle_open => match (sig, child.id()) {
                        (Some(sig), Some(pid)) => {
                            // SAFETY: plain FFI call; `pid` is our child and `id()` returned
                            // it, so it has not been reaped and cannot have been reused.
                            unsafe { libc::kill(pid as libc::pid_t, sig) };
                        }
                        (Some(_), None) => {}
                        (None, _) => {
                            // The environment dropped its handle: nobody will manage this
                            // process any more, so it must not outlive the emulator.
                            handle_open = false;
                            let _ = child.start_kill();
                        }
                    },
                }
            };
            let _ = exits.send(Exit {
                environment,
                generation,
                who,
                status,
            });
        });
        let proc_file =
            |name: &str| pid.and_then(|p| std::fs::File::open(format!("/proc/{p}/{name}")).ok());
        Ok(Process {
            signals,
            status: proc_file("status"),
            stat: proc_file("stat"),
            last_peak: None,
        })
    }

    /// Sends SIGTERM (to the process Lambda started; SIGKILL ends its whole group).
    pub(crate) fn terminate(&self) {
        let _ = self.signals.send(libc::SIGTERM);
    }

    /// Sends SIGKILL.
    pub(crate) fn kill(&self) {
        let _ = self.signals.send(libc::SIGKILL);
    }

    /// Peak resident memory so far (`VmHWM`), in MB rounded up.
    ///
    /// Resident memory grows only through page faults (the process's own, or those the
    /// kernel takes on its behalf when it populates a mapping), so while the fault count in
    /// `/proc/<pid>/stat` stands still the peak does too, and `/proc/<pid>/status` need not
    /// be read: the kernel writes out `stat` in under half the time (measured 3.5 µs
    /// against 7.9 µs), and an invocation that allocates nothing new faults nothing.
    /// (khugepaged folding pages into a huge page can add a few resident pages without a
    /// fault; the next fault shows them.)
    pub(crate) fn max_memory_mb(&mut self) -> Option<u64> {
        let faults = self.stat.as_ref().and_then(|f| read_proc(f, page_faults));
        if let (Some(now), Some((then, mb))) = (faults, self.last_peak) {
            if now == then {
                return Some(mb);
            }
        }
        // Counted before the peak is read: a fault in between shows next time.
        let mb = read_proc(self.status.as_ref()?, vm_hwm_kb)?.div_ceil(1024);
        self.last_peak = faults.map(|f| (f, mb));
        Some(mb)
    }
}

/// What `parse` finds in a small procfs file, read again from its start (procfs writes it
/// anew on every read).
fn read_proc<T>(file: &std::fs::File, parse: fn(&str) -> Option<T>) -> Option<T> {
    use std::os::unix::fs::FileExt;
    // `VmHWM` is in the first kilobyte or so of `status`; `stat` is one short line.
    let mut buf = [0u8; 4096];
    let n = file.read_at(&mut buf, 0).ok()?;
    parse(std::str::from_utf8(&buf[..n]).ok()?)
}

/// `VmHWM` of a `/proc/<pid>/status` text, in kB.
fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Minor plus major page faults of a `/proc/<pid>/stat` line (fields 10 and 12; the
/// command name, field 2, is in parentheses and may hold spaces, so count after it).
fn page_faults(stat: &str) -> Option<u64> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let minor: u64 = fields.nth(7)?.parse().ok()?;
    let major: u64 = fields.nth(1)?.parse().ok()?;
    Some(minor + major)
}

fn forward(mut stream: impl AsyncRead + Unpin + Send + 'static, logs: Logs, source: Source) {
    tokio::spawn(async move {
        let mut lines = LineSplitter::default();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let n = match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            lines.push(&chunk[..n], |line| {
                logs.output(&source, &String::from_utf8_lossy(line))
            });
        }
        lines.finish(|line| logs.output(&source, &String::from_utf8_lossy(line)));
    });
}

/// The longest log line Lambda keeps as one event (256 KB); a longer line is split.
pub(crate) const MAX_LINE: usize = 256 * 1024;

/// Cuts a process's output into lines: at each newline (without it, and without a `\r`
/// before it), and every [`MAX_LINE`] bytes of a line that goes on longer, so a process
/// that never prints a newline cannot make the emulator hold more than that.
#[derive(Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Takes more output; calls `emit` for every line completed.
    pub(crate) fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        while !bytes.is_empty() {
            let room = MAX_LINE - self.partial.len();
            let window = &bytes[..bytes.len().min(room)];
            if let Some(nl) = window.iter().position(|&b| b == b'\n') {
                self.partial.extend_from_slice(&window[..nl]);
                emit(trim_cr(&self.partial));
                self.partial.clear();
                bytes = &bytes[nl + 1..];
            } else {
                self.partial.extend_from_slice(window);
                bytes = &bytes[window.len()..];
                if self.partial.len() == MAX_LINE {
                    // Cut at a character boundary, so no character is torn in two.
                    let cut = utf8_boundary(&self.partial);
                    emit(&self.partial[..cut]);
                    self.partial.drain(..cut);
                }
            }
        }
    }

    /// The output ended: the last line, if it had no newline.
    pub(crate) fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.partial.is_empty() {
            emit(trim_cr(&self.partial));
            self.partial.clear();
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The largest length ≤ `bytes.len()` that does not end inside a UTF-8 character (text
/// that is not UTF-8 is cut anywhere).
fn utf8_boundary(bytes: &[u8]) -> usize {
    let len = bytes.len();
    // A character is at most 4 bytes: look back that far for the start of the last one.
    for back in 1..=4.min(len) {
        let b = bytes[len - back];
        if b & 0xC0 != 0x80 {
            let needed = match b {
                0x00..=0x7F => 1,
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => return len,
            };
            return if needed > back { len - back } else { len };
        }
    }
    len
}

/// How Lambda words a process exit: `exit status 1`, `signal: killed`.
pub(crate) fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exit status {code}")
    } else if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGKILL => "killed",
            libc::SIGTERM => "terminated",
            libc::SIGSEGV => "segmentation fault",
            libc::SIGABRT => "aborted",
            _ => return format!("signal: {sig}"),
        };
        format!("signal: {name}")
    } else {
        "unknown exit".to_owned()
    }
}

/// SIGKILLs a process group when dropped: a launched process leads its own group, and a
/// child it forked (a shell wrapper that did not `exec`) must end with the environment.
struct GroupKiller(u32);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        // SAFETY: plain FFI call. The group id is the leader's pid; Linux does not reuse a
        // pid while a process group of that id has members, so this reaches only
        // processes of this group (and fails harmlessly with ESRCH when none is left).
        unsafe { libc::kill(-(self.0 as libc::pid_t), libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for p in pieces {
            s.push(p, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn page_faults_are_counted_after_a_command_name_with_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt …
        let stat = "4242 (my (odd) fn) S 1 4242 4242 0 -1 4194560 1500 77 3 0 12 4 0 0 20 0 1";
        assert_eq!(page_faults(stat), Some(1503));
        assert_eq!(page_faults("4242 (truncated"), None);
    }

    #[test]
    fn the_peak_is_read_from_vm_hwm() {
        let status =
            "Name:\tbootstrap\nVmPeak:\t  9000 kB\nVmHWM:\t    5121 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(vm_hwm_kb(status), Some(5121));
        assert_eq!(vm_hwm_kb("Name:\tbootstrap\n"), None);
    }

    #[test]
    fn this_process_reads_as_a_live_one_would() {
        let open = |name: &str| std::fs::File::open(format!("/proc/self/{name}")).unwrap();
        assert!(read_proc(&open("stat"), page_faults).is_some_and(|f| f > 0));
        assert!(read_proc(&open("status"), vm_hwm_kb).is_some_and(|kb| kb > 0));
    }

    #[test]
    fn output_is_cut_at_newlines_whatever_the_reads() {
        assert_eq!(
            split(&[b"one\ntw", b"o\r\n", b"\nthree"]),
            vec![
                b"one".to_vec(),
                b"two".to_vec(),
                b"".to_vec(),
                b"three".to_vec()
            ]
        );
    }

    #[test]
    fn a_line_longer_than_lambdas_limit_is_split_into_pieces_of_it() {
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        let lines = split(&[&long, b"\nnext\n"]);
        let lens: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(lens, vec![MAX_LINE, MAX_LINE, 10, 4]);
    }

    #[test]
    fn a_split_never_tears_a_character() {
        // 'é' is two bytes; put one across the cut.
        let mut long = vec![b'a'; MAX_LINE - 1];
        long.extend_from_slice("é".as_bytes());
        let lines = split(&[&long]);
        assert_eq!(lines[0].len(), MAX_LINE - 1);
        assert_eq!(lines[1], "é".as_bytes());
        assert!(lines.iter().all(|l| std::str::from_utf8(l).is_ok()));
    }

    #[test]
    fn environment_has_lambda_variables_and_user_overrides() {
        let mut c = FunctionConfig::new("/tmp/fns/hello");
        c.env
            .push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "256".into()));
        let env = lambda_environment(&c, "127.0.0.1:9001");
        let get = |k: &str| {
            env.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9001"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_NAME"), Some("hello"));
        assert_eq!(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), Some("256"));
        assert_eq!(get("LAMBDA_TASK_ROOT"), Some("/tmp/fns"));
        assert_eq!(get("AWS_LAMBDA_LOG_GROUP_NAME"), Some("/aws/lambda/hello"));
        assert!(
            get("AWS_LAMBDA_LOG_STREAM_NAME")
                .unwrap()
                .contains("/[$LATEST]")
        );
    }

    #[test]
    fn extensions_do_not_inherit_runtime_only_variables() {
        let mut c = FunctionConfig::new("/tmp/fns/hello");
        c.env.push(("_SECRET".into(), "x".into()));
        c.env.push(("TABLE".into(), "t".into()));
        let env = extension_environment(&c, "127.0.0.1:9001");
        let names: Vec<_> = env.iter().map(|(k, _)| k.as_str()).collect();
        for gone in [
            "_HANDLER",
            "_SECRET",
            "LAMBDA_TASK_ROOT",
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "AWS_LAMBDA_LOG_STREAM_NAME",
        ] {
            assert!(!names.contains(&gone), "{gone}");
        }
        for kept in [
            "AWS_LAMBDA_RUNTIME_API",
            "AWS_LAMBDA_FUNCTION_NAME",
            "TABLE",
            "AWS_REGION",
        ] {
            assert!(names.contains(&kept), "{kept}");
        }
    }
}
