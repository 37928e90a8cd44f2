//! Graceful shutdown for function authors: cleanup hooks that run on SIGTERM.
//!
//! Lambda sends the runtime SIGTERM before killing it only when an extension is registered
//! (protocol.md §3.4). [`GracefulShutdown::install`] registers a no-op internal extension
//! for exactly that reason, then waits for SIGTERM (or SIGINT, for local runs) and runs the
//! hooks within a budget that fits Lambda's: 500 ms for the runtime when an internal
//! extension is registered, 300 ms when only external ones are.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_core::Stream;
use ironlambda_api_client::Error;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_tokio::Signals;

use crate::extension::{BoxFuture, Extension};

/// The default time all hooks together may take.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(250);
/// The name of the internal extension that makes Lambda send SIGTERM.
pub const EXTENSION_NAME: &str = "ironlambda-graceful-shutdown";

type Hook = (String, Box<dyn FnOnce() -> BoxFuture<()> + Send>);

/// Cleanup to run when Lambda shuts the environment down.
///
/// ```no_run
/// use ironlambda_extension::{Error, GracefulShutdown};
/// # async fn demo() -> Result<(), Error> {
/// GracefulShutdown::new()
///     .hook("flush metrics", || async { /* send what is buffered */ })
///     .install()
///     .await?;
/// // … then run the function: ironlambda_runtime::run(handler).await
/// # Ok(()) }
/// ```
pub struct GracefulShutdown {
    budget: Duration,
    hooks: Vec<Hook>,
}

impl Default for GracefulShutdown {
    fn default() -> Self {
        GracefulShutdown {
            budget: DEFAULT_BUDGET,
            hooks: Vec::new(),
        }
    }
}

impl GracefulShutdown {
    /// No hooks yet, the default budget.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long all hooks together may take (default 250 ms).
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Adds a hook; hooks run in the order they were added.
    pub fn hook<F, Fut>(mut self, name: impl Into<String>, hook: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hooks
            .push((name.into(), Box::new(move || Box::pin(hook()))));
        self
    }

    /// Registers the internal extension and starts waiting for SIGTERM/SIGINT; on the
    /// signal the hooks run and the process exits 0. Call it before the runtime loop starts.
    pub async fn install(self) -> Result<(), Error> {
        // Listen before registering, so a signal that comes right after is not missed.
        let signals = Signals::new([SIGTERM, SIGINT])
            .map_err(|e| Error::from(e).with_error_type("Extension.SignalHandlerFailed"))?;
        match Extension::new()
            .with_name(EXTENSION_NAME)
            .spawn_internal()
            .await
        {
            Ok(_) => {}
            // No extension can register, so Lambda will not send SIGTERM: the function
            // still runs, without its cleanup.
            Err(e) if e.error_type() == crate::extension::EXTENSIONS_DISABLED => {
                let message = "graceful shutdown is off: extensions are disabled here, so Lambda sends no SIGTERM and the hooks will not run";
                // Usually installed before the runtime sets up logging: say it anyway.
                if tracing::dispatcher::has_been_set() {
                    tracing::warn!("{message}");
                } else {
                    eprintln!("WARN {message}");
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        tokio::spawn(async move {
            let signal = next_signal(signals).await;
            tracing::info!(
                "graceful shutdown: received {}",
                if signal == Some(SIGINT) {
                    "SIGINT"
                } else {
                    "SIGTERM"
                }
            );
            self.run_hooks().await;
            std::process::exit(0);
        });
        Ok(())
    }

    /// Runs every hook in order within the budget, logging what ran.
    async fn run_hooks(self) {
        let deadline = Instant::now() + self.budget;
        for (name, hook) in self.hooks {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("graceful shutdown: skipped {name:?}: the budget is spent");
                continue;
            }
            let started = Instant::now();
            match tokio::time::timeout(left, hook()).await {
                Ok(()) => tracing::info!(
                    "graceful shutdown: {name:?} finished in {} ms",
                    started.elapsed().as_millis()
                ),
                Err(_) => {
                    tracing::warn!("graceful shutdown: {name:?} did not finish within the budget")
                }
            }
        }
    }
}

async fn next_signal(mut signals: Signals) -> Option<i32> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut signals).poll_next(cx)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn hooks_run_in_order_and_a_slow_one_is_cut_off() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let (a, b, c) = (ran.clone(), ran.clone(), ran.clone());
        GracefulShutdown::new()
            .budget(Duration::from_millis(200))
            .hook(
                "first",
                move || async move { a.lock().unwrap().push("first") },
            )
            .hook("slow", move || async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                b.lock().unwrap().push("slow");
            })
            .hook("after budget", move || async move {
                c.lock().unwrap().push("after budget")
            })
            .run_hooks()
            .await;
        assert_eq!(*ran.lock().unwrap(), vec!["first"]);
    }
}
