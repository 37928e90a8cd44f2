//! The invocation's X-Ray trace header, where code can find it.
//!
//! Lambda runtimes copy `Lambda-Runtime-Trace-Id` into `_X_AMZN_TRACE_ID` for each
//! invocation and unset it when the header is missing (protocol.md §1.1), because AWS SDKs
//! read it from there. Changing the environment while another thread may read it is
//! undefined behaviour in C's `getenv` (a DNS lookup on a blocking thread reads it), so the
//! variable is only changed while the process has a single thread ([`crate::start`], or a
//! current-thread runtime before any blocking task). When that is no longer true, the
//! runtime says so once, loudly, at WARN: the variable is not set, or keeps an earlier
//! invocation's trace.
//!
//! The trace is always right in two places: [`crate::Context::xray_trace_id`], and
//! [`trace_id`], a task-local set around each call of the handler.

tokio::task_local! {
    static TRACE_ID: Option<String>;
}

/// The X-Ray trace header of the invocation being handled (`Root=…;Parent=…;Sampled=…`),
/// from anywhere inside the handler's task: what `_X_AMZN_TRACE_ID` would hold, without
/// relying on the process environment. `None` outside a handler, in tasks the handler
/// spawned (task-locals are not inherited: pass the value along), or when the invocation
/// has no trace.
pub fn trace_id() -> Option<String> {
    TRACE_ID.try_with(Clone::clone).ok().flatten()
}

/// Runs `handler` with [`trace_id`] giving `trace`.
pub(crate) async fn with_trace_id<F: std::future::Future>(
    trace: Option<String>,
    handler: F,
) -> F::Output {
    TRACE_ID.scope(trace, handler).await
}

const VAR: &str = "_X_AMZN_TRACE_ID";

/// Tracks what the variable holds so unchanged values cost nothing.
pub(crate) struct TraceEnv {
    current: Option<String>,
    warned: bool,
    /// `/proc/self/stat`, opened at the first change (not at start, where every system
    /// call delays the first `/next`): each check is then a single `pread`.
    stat: std::cell::OnceCell<Option<std::fs::File>>,
}

impl TraceEnv {
    pub(crate) fn from_env() -> Self {
        TraceEnv {
            current: std::env::var(VAR).ok(),
            warned: false,
            stat: std::cell::OnceCell::new(),
        }
    }

    /// Sets or unsets the variable for an invocation with trace header `trace`.
    pub(crate) fn update(&mut self, trace: Option<&str>) {
        if self.current.as_deref() == trace {
            return;
        }
        let stat = self
            .stat
            .get_or_init(|| std::fs::File::open("/proc/self/stat").ok());
        if !stat.as_ref().is_some_and(single_threaded) {
            if !self.warned {
                self.warned = true;
                let state = match &self.current {
                    Some(_) => "keeps an earlier invocation's trace from now on",
                    None => "is not set",
                };
                tracing::warn!(
                    "{VAR} {state}: this process now runs several threads (a multi-thread runtime, or a blocking task such as a DNS lookup or tokio::fs), and changing the environment while other threads may read it is undefined behaviour. AWS SDK calls read their trace from {VAR}. The right trace is in Context::xray_trace_id and ironlambda_runtime::trace_id(); ironlambda_runtime::start keeps {VAR} right as long as the handler starts no blocking task."
                );
            }
            return;
        }
        // SAFETY: the process has exactly one thread (this one), so no other thread can be
        // reading or writing the environment while it changes.
        unsafe {
            match trace {
                Some(t) => std::env::set_var(VAR, t),
                None => std::env::remove_var(VAR),
            }
        }
        self.current = trace.map(str::to_owned);
    }
}

/// True when this process has exactly one thread (field 20 of `/proc/self/stat`, read
/// again from offset 0 of the open file: procfs regenerates it on every read).
fn single_threaded(stat: &std::fs::File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 1024];
    let Ok(n) = stat.read_at(&mut buf, 0) else {
        return false;
    };
    let text = String::from_utf8_lossy(&buf[..n]);
    // The command name (field 2) is in parentheses and may hold spaces; count after it.
    let Some(after) = text.rfind(')').map(|i| &text[i + 1..]) else {
        return false;
    };
    after.split_whitespace().nth(17) == Some("1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_threaded_process_is_detected() {
        // The test harness runs tests on worker threads, so this process has several. (The
        // single-threaded case is covered end to end: a function's `_X_AMZN_TRACE_ID`
        // follows its invocations.)
        let stat = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(!single_threaded(&stat));
    }
}
