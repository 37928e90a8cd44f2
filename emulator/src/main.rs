//! `ironlambda-emulator`: run a Lambda function locally.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ironlambda_emulator::{Emulator, Faults};
use tokio::signal::unix::{SignalKind, signal};

/// Run an AWS Lambda function (a `bootstrap` executable) on a local Lambda control plane.
#[derive(Parser, Debug)]
#[command(name = "ironlambda-emulator", version)]
struct Args {
    /// A function to serve: its executable, named after the file, or NAME=PATH
    /// (repeatable: each function gets environments of its own; the Invoke API routes by name).
    #[arg(long = "function", value_name = "[NAME=]PATH", required = true, value_parser = parse_function)]
    functions: Vec<(Option<String>, PathBuf)>,
    /// Port for the Invoke API and the Runtime API (0 picks a free one).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Address to bind; loopback unless you really mean otherwise.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// Function timeout in seconds (Lambda allows 1 to 900).
    #[arg(long, default_value_t = 3.0, value_parser = parse_secs)]
    timeout: f64,
    /// Init phase limit in seconds.
    #[arg(long, default_value_t = 10.0, value_parser = parse_secs)]
    init_timeout: f64,
    /// Memory size in MB.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(128..=10240))]
    memory: u32,
    /// Name of the (first) function (default: its executable's file name).
    #[arg(long)]
    name: Option<String>,
    /// Environment variable for the function, as KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Directory of external extensions to launch, like /opt/extensions.
    #[arg(long, value_name = "DIR")]
    extensions_dir: Option<PathBuf>,
    /// Start the function now instead of on the first invoke.
    #[arg(long)]
    eager: bool,
    /// Invocations one environment runs at once (Lambda Managed Instances): the function
    /// gets AWS_LAMBDA_MAX_CONCURRENCY=N.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    max_concurrency: u32,
    /// Up to this many execution environments side by side, started on demand as
    /// concurrent invokes arrive (each with its own processes and log tag).
    #[arg(long, value_name = "M", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    environments: u16,
    /// Also serve the functions as Function URLs on this port (0 picks a free one): plain
    /// HTTP for curl and browsers; with several functions, the first path segment picks one.
    #[arg(long, value_name = "PORT")]
    url_port: Option<u16>,
    /// Make the Runtime API misbehave on purpose (repeatable): next-500, next-drop,
    /// truncate-event, omit-header=NAME, corrupt-header=NAME, response-STATUS, delay=MS,
    /// close, random=SEED[:PERCENT]; append xN to apply N times.
    #[arg(long = "fault", value_name = "SPEC", value_parser = parse_fault)]
    faults: Vec<String>,
}

fn parse_fault(s: &str) -> Result<String, String> {
    Faults::none()
        .parse(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 900.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 900"
        )),
    }
}

/// `PATH`, or `NAME=PATH` when what comes before the first `=` is a function name (so a
/// path with `=` in a directory name still reads as a path).
fn parse_function(s: &str) -> Result<(Option<String>, PathBuf), String> {
    let named = s.split_once('=').filter(|(name, _)| {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    match named {
        Some((_, "")) => Err(format!("{s:?} names no executable after =")),
        Some((name, path)) => Ok((Some(name.to_owned()), PathBuf::from(path))),
        None => Ok((None, PathBuf::from(s))),
    }
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ironlambda-emulator: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> ExitCode {
    let (first_name, first_path) = &args.functions[0];
    let mut builder = Emulator::builder(first_path)
        .addr(SocketAddr::new(args.host, args.port))
        .timeout(Duration::from_secs_f64(args.timeout))
        .init_timeout(Duration::from_secs_f64(args.init_timeout))
        .memory_mb(args.memory)
        .eager_init(args.eager)
        .max_concurrency(args.max_concurrency)
        .environments(usize::from(args.environments))
        .echo_logs(true);
    if let Some(dir) = &args.extensions_dir {
        builder = builder.extensions_dir(dir);
    }
    if let Some(port) = args.url_port {
        builder = builder.url_port(port);
    }
    if let Some(name) = first_name.as_ref().or(args.name.as_ref()) {
        builder = builder.name(name);
    }
    for (name, path) in &args.functions[1..] {
        let name = name
            .clone()
            .unwrap_or_else(|| ironlambda_emulator::FunctionConfig::new(path).name);
        builder = builder.function(name, path);
    }
    for (k, v) in &args.env {
        builder = builder.env(k, v);
    }
    let mut faults = Faults::none();
    for spec in &args.faults {
        faults = match faults.parse(spec) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("ironlambda-emulator: {e}");
                return ExitCode::FAILURE;
            }
        };
    }
    if !faults.is_empty() {
        eprintln!(
            "ironlambda-emulator: injecting faults: {}",
            args.faults.join(", ")
        );
    }
    builder = builder.faults(faults);
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            eprintln!("ironlambda-emulator: cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let emulator = match builder.start().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ironlambda-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(warning) = exposure_warning(emulator.addr().ip()) {
        eprintln!("{warning}");
    }
    let c = emulator.config();
    let names: Vec<&str> = emulator.functions().map(|f| f.name.as_str()).collect();
    let mut scale = String::new();
    if c.max_concurrency > 1 {
        scale.push_str(&format!(", max concurrency {}", c.max_concurrency));
    }
    if c.environments > 1 {
        scale.push_str(&format!(", up to {} environments", c.environments));
    }
    println!(
        "ironlambda-emulator: listening on http://{} (function{} {}, timeout {:.2} s, memory {} MB{scale})",
        emulator.addr(),
        if names.len() > 1 { "s" } else { "" },
        names.join(", "),
        c.timeout.as_secs_f64(),
        c.memory_mb
    );
    println!(
        "ironlambda-emulator: try  curl -s {} -d '{{}}'",
        emulator.invoke_url()
    );
    if let Some(url) = emulator.function_url() {
        let example = if names.len() > 1 {
            format!("{url}/{}/", names[0])
        } else {
            format!("{url}/")
        };
        println!("ironlambda-emulator: Function URL on {url}: try  curl -i {example}");
    }
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    println!("ironlambda-emulator: shutting down");
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// What to say when the emulator listens beyond loopback: its Runtime API has no
/// authentication (Lambda's is reachable only inside the sandbox), so anyone who can reach
/// the port can read events and forge the function's answers.
fn exposure_warning(ip: std::net::IpAddr) -> Option<String> {
    (!ip.is_loopback()).then(|| {
        format!(
            "ironlambda-emulator: WARNING: listening on {ip}, beyond loopback. The Runtime API on this port is unauthenticated: anyone who can reach it can read every event and forge the function's answers. Use --host 127.0.0.1 unless this network is yours alone."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_beyond_loopback_is_warned_about() {
        for exposed in ["0.0.0.0", "::", "192.0.2.7"] {
            let ip: std::net::IpAddr = exposed.parse().unwrap();
            let warning = exposure_warning(ip).unwrap_or_else(|| panic!("{exposed}"));
            assert!(warning.contains("unauthenticated"), "{warning}");
        }
        for local in ["127.0.0.1", "127.3.2.1", "::1"] {
            assert_eq!(exposure_warning(local.parse().unwrap()), None, "{local}");
        }
    }
}
