//! Helpers for the end-to-end tests: finding the built function binaries and starting an
//! emulator around them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ironlambda_emulator::{Emulator, EmulatorBuilder, InvokeResponse, invoke_request, send};

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
