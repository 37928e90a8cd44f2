//! Keeping `_X_AMZN_TRACE_ID` in step with the invocation's trace header, soundly.
//!
//! Lambda runtimes copy `Lambda-Runtime-Trace-Id` into `_X_AMZN_TRACE_ID` for each
//! invocation and unset it when the header is missing (protocol.md §1.1), because AWS SDKs
//! read it from there. Changing the environment while another thread may read it is
//! undefined behaviour in C's `getenv`, so the variable is only changed while the process has
//! a single thread (e.g. [`crate::start`], or `#[tokio::main(flavor = "current_thread")]`
//! without blocking tasks). Otherwise it is left alone: the trace id is always in
//! [`crate::Context::xray_trace_id`].

const VAR: &str = "_X_AMZN_TRACE_ID";

/// Tracks what the variable holds so unchanged values cost nothing.
pub(crate) struct TraceEnv {
    current: Option<String>,
    warned: bool,
    /// `/proc/self/stat`, opened once: each check is then a single `pread`.
    stat: Option<std::fs::File>,
}

impl TraceEnv {
    pub(crate) fn from_env() -> Self {
        TraceEnv {
            current: std::env::var(VAR).ok(),
            warned: false,
            stat: std::fs::File::open("/proc/self/stat").ok(),
        }
    }

    /// Sets or unsets the variable for an invocation with trace header `trace`.
    pub(crate) fn update(&mut self, trace: Option<&str>) {
        if self.current.as_deref() == trace {
            return;
        }
        if !self.stat.as_ref().is_some_and(single_threaded) {
            if !self.warned {
                self.warned = true;
                tracing::debug!(
                    "{VAR} is not updated in a multi-threaded process; read Context::xray_trace_id instead"
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
