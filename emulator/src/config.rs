//! How the emulated function is configured.

use std::path::PathBuf;
use std::time::Duration;

/// The file whose presence beside the extensions directory turns extensions off (what
/// Lambda looks for at `/opt/disable-extensions-jwigqn8j`).
pub const EXTENSIONS_DISABLED_MARKER: &str = "disable-extensions-jwigqn8j";

/// The function an emulator runs and the limits it runs it under.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// The executable (Lambda's `bootstrap`).
    pub executable: PathBuf,
    /// The function name used in ARNs, log group and the Invoke API path.
    pub name: String,
    /// The function timeout (Lambda: 1 s to 900 s, default 3 s).
    pub timeout: Duration,
    /// The init phase limit (Lambda on-demand: 10 s).
    pub init_timeout: Duration,
    /// Memory size in MB, reported to the function and in REPORT lines.
    pub memory_mb: u32,
    /// Extra environment variables for the function.
    pub env: Vec<(String, String)>,
    /// Start the runtime when the emulator starts instead of on the first invoke.
    pub eager_init: bool,
    /// The region in ARNs and `AWS_REGION`.
    pub region: String,
    /// A directory whose files are launched as external extensions, like `/opt/extensions`.
    pub extensions_dir: Option<PathBuf>,
    /// A layer turned extensions off: the marker file [`EXTENSIONS_DISABLED_MARKER`] sits
    /// beside the extensions directory (as `/opt/disable-extensions-jwigqn8j` beside
    /// `/opt/extensions`). None is launched, and the Extensions, Telemetry and Logs APIs
    /// answer 404 (edge-cases B15).
    pub extensions_disabled: bool,
    /// How many invocations one environment runs at once, given to the function as
    /// `AWS_LAMBDA_MAX_CONCURRENCY` when above 1 (Lambda Managed Instances, protocol.md §8).
    pub max_concurrency: u32,
    /// Up to how many execution environments run side by side, each with its own
    /// processes; more start on demand as concurrent invokes arrive, as Lambda scales out.
    pub environments: usize,
}

impl FunctionConfig {
    /// A configuration with Lambda's defaults, named after the executable's file name.
    pub fn new(executable: impl Into<PathBuf>) -> Self {
        let executable = executable.into();
        let name = executable
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| *n != "bootstrap")
            .unwrap_or("function")
            .to_owned();
        FunctionConfig {
            executable,
            name,
            timeout: Duration::from_secs(3),
            init_timeout: Duration::from_secs(10),
            memory_mb: 128,
            env: Vec::new(),
            eager_init: false,
            region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
            extensions_dir: None,
            extensions_disabled: false,
            max_concurrency: 1,
            environments: 1,
        }
    }

    /// The unqualified function ARN.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:000000000000:function:{}",
            self.region, self.name
        )
    }
}
