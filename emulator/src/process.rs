//! Launching the runtime process with Lambda's environment, forwarding its output, and
//! ending it.

use std::path::Path;
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::config::FunctionConfig;
use crate::logs::Logs;

/// Host variables passed through to the function when set, so SDK calls work locally.
const PASSED_THROUGH: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// A running runtime process.
pub(crate) struct RuntimeProcess {
    child: Child,
    pid: Option<u32>,
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
    for name in PASSED_THROUGH {
        if let Ok(v) = std::env::var(name) {
            env.push(((*name).into(), v));
        }
    }
    // User variables last, so they win (Lambda refuses reserved names; we let tests override).
    env.extend(config.env.iter().cloned());
    env
}

/// `YYYY/MM/DD/[$LATEST]<32 hex>`, like Lambda's log stream names.
fn log_stream_name() -> String {
    let (y, m, d) = ironlambda_api_client::time::today();
    format!(
        "{y:04}/{m:02}/{d:02}/[$LATEST]{}",
        uuid::Uuid::new_v4().simple()
    )
}

impl RuntimeProcess {
    /// Starts the function's executable with a clean Lambda environment; its stdout and
    /// stderr lines go to `logs`.
    pub(crate) fn launch(
        config: &FunctionConfig,
        runtime_api: &str,
        logs: &Logs,
    ) -> std::io::Result<Self> {
        let mut cmd = Command::new(&config.executable);
        cmd.env_clear()
            .envs(lambda_environment(config, runtime_api))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = config
            .executable
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            cmd.current_dir(dir);
        }
        let mut child = cmd.spawn()?;
        if let Some(out) = child.stdout.take() {
            forward(out, logs.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward(err, logs.clone());
        }
        let pid = child.id();
        Ok(RuntimeProcess { child, pid })
    }

    /// Waits for the process to exit.
    pub(crate) async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// SIGKILLs the process and reaps it.
    pub(crate) async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Peak resident memory so far (`VmHWM`), in MB rounded up.
    pub(crate) fn max_memory_mb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid?)).ok()?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb.div_ceil(1024))
    }
}

fn forward(stream: impl AsyncRead + Unpin + Send + 'static, logs: Logs) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    logs.line(line.trim_end_matches(['\n', '\r']));
                }
            }
        }
    });
}

/// How Lambda words a runtime exit: `exit status 1`, `signal: killed`.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
