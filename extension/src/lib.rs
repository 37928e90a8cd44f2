//! AWS Lambda extensions in Rust.
//!
//! - [`Extension`]: hooks for INVOKE and SHUTDOWN events and an optional Telemetry API
//!   subscription; [`Extension::run`] for an external extension (a binary in
//!   `/opt/extensions`), [`Extension::spawn_internal`] for one inside the function process.
//! - [`GracefulShutdown`]: cleanup hooks for function authors that run on SIGTERM.
//!
//! A failure during registration or subscription is reported to `/extension/init/error`, a
//! failing hook afterwards to `/extension/exit/error`, with a `Category.Reason` error type;
//! [`Extension::run`] then returns the error so the process can exit non-zero.
//!
//! ```no_run
//! use ironlambda_extension::{Error, Extension, TelemetryConfig, TelemetryRecord};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Error> {
//!     Extension::new()
//!         .on_invoke(|e| async move { println!("INVOKE {}", e.request_id); Ok(()) })
//!         .with_telemetry(TelemetryConfig::default(), |batch| async move {
//!             for event in batch {
//!                 if let TelemetryRecord::Report(record, metrics) = event.parse() {
//!                     println!("{} took {} ms", record.request_id, metrics.duration_ms);
//!                 }
//!             }
//!         })
//!         .run()
//!         .await
//! }
//! ```

mod extension;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    //! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, not a public API).

    /// A telemetry delivery's body, as the listener reads it.
    pub fn telemetry_batch(bytes: &[u8]) {
        if let Some(batch) = crate::telemetry::parse_batch(bytes) {
            for event in &batch {
                let _ = event.parse();
            }
        }
    }
}
mod graceful;
mod telemetry;

pub use extension::{EXTENSIONS_DISABLED, Extension};
pub use graceful::{DEFAULT_BUDGET, EXTENSION_NAME, GracefulShutdown};
pub use ironlambda_api_client::telemetry::{
    Buffering, TelemetryEvent, TelemetryRecord, TelemetryType,
};
pub use ironlambda_api_client::{Error, InvokeEvent, ShutdownEvent, ShutdownReason, Tracing};
pub use telemetry::TelemetryConfig;

/// The name an external extension registers under: the file name it was started by
/// (`argv[0]`), which is how Lambda matches a registration to the file it launched from
/// `/opt/extensions`. A layer often installs an extension as a symlink to a binary with
/// another name; the link's name is the one Lambda knows, so the target's name (what
/// `current_exe` gives) would make Lambda treat the extension as internal.
pub fn default_extension_name() -> Option<String> {
    let invoked = std::env::args_os().next();
    name_from(invoked.as_deref())
        .or_else(|| name_from(Some(std::env::current_exe().ok()?.as_os_str())))
}

fn name_from(path: Option<&std::ffi::OsStr>) -> Option<String> {
    std::path::Path::new(path?)
        .file_name()?
        .to_str()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #[test]
    fn name_is_the_file_name_it_was_started_by() {
        let name = super::default_extension_name().unwrap();
        assert!(name.starts_with("ironlambda_extension"), "{name}");
        let from = |p: &str| super::name_from(Some(std::ffi::OsStr::new(p)));
        assert_eq!(from("/opt/extensions/my-ext").as_deref(), Some("my-ext"));
        assert_eq!(from("my-ext").as_deref(), Some("my-ext"));
        assert_eq!(from("/"), None);
    }
}
