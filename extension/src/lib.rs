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
mod graceful;
mod telemetry;

pub use extension::Extension;
pub use graceful::{DEFAULT_BUDGET, EXTENSION_NAME, GracefulShutdown};
pub use ironlambda_api_client::telemetry::{
    Buffering, TelemetryEvent, TelemetryRecord, TelemetryType,
};
pub use ironlambda_api_client::{Error, InvokeEvent, ShutdownEvent, ShutdownReason, Tracing};
pub use telemetry::TelemetryConfig;

/// The name an external extension registers under: its executable's file name, which is how
/// Lambda matches a registration to the file it launched from `/opt/extensions`.
pub fn default_extension_name() -> Option<String> {
    std::env::current_exe()
        .ok()?
        .file_name()?
        .to_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #[test]
    fn name_is_the_executable_file_name() {
        let name = super::default_extension_name().unwrap();
        assert!(name.starts_with("ironlambda_extension"), "{name}");
    }
}
