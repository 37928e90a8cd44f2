//! `cargo ironlambda`: the developer loop for a crate of Lambda functions built on
//! ironlambda, in any crate or workspace.
//!
//! - `package`: deployable zips (`build.rs` asks cargo what it built, `glibc.rs` checks
//!   each binary against the runtime, `package.rs` writes the zips).
//! - `watch`: build, serve on the emulator, rebuild on change (`watch.rs`).
//! - `invoke`: one invocation of a running emulator, printed for a reader (`invoke.rs`).
//! - `events`: the sample events for the common triggers (`events.rs`).

mod build;
mod events;
mod glibc;
mod invoke;
mod package;
mod watch;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Package, watch and invoke Lambda functions built on ironlambda.
#[derive(Parser, Debug)]
#[command(name = "cargo ironlambda", bin_name = "cargo ironlambda", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct Build {
    /// Only this binary (repeatable; default: every binary of the package).
    #[arg(long = "bin", value_name = "NAME")]
    bins: Vec<String>,
    /// Build with the release profile.
    #[arg(long)]
    release: bool,
    /// Build with this cargo profile.
    #[arg(long)]
    profile: Option<String>,
    /// Features to enable (comma-separated or repeated).
    #[arg(long = "features", short = 'F', value_delimiter = ',')]
    features: Vec<String>,
}

impl Build {
    fn options(&self, target: Option<String>) -> build::BuildOptions {
        build::BuildOptions {
            bins: self.bins.clone(),
            release: self.release,
            profile: self.profile.clone(),
            target,
            features: self.features.clone(),
            zig: false,
            static_crt: false,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build through cargo and write deployable zips under `lambda/<runtime>/<target>/` in
    /// cargo's target directory: a function as `bootstrap`, an extension as
    /// `extensions/<name>`.
    Package {
        #[command(flatten)]
        build: Build,
        /// Package every binary as an extension (a layer zip), not only those declared in
        /// `[package.metadata.ironlambda] extensions = [...]`.
        #[arg(long)]
        extension: bool,
        /// The Lambda runtime to deploy on: provided.al2023 (glibc 2.34) or provided.al2
        /// (glibc 2.26, built through cargo-zigbuild).
        #[arg(long, default_value = "provided.al2023")]
        runtime: String,
        /// A Rust target, e.g. aarch64-unknown-linux-gnu for Graviton.
        #[arg(long)]
        target: Option<String>,
        /// Link glibc into the binaries (static-pie): a faster start, and no glibc needed
        /// from the runtime. Needs glibc's static libraries for the target (libc6-dev on
        /// Debian for this machine's). `[build] rustflags` are then shadowed: put flags
        /// under `[target.<triple>]`.
        #[arg(long = "static")]
        static_link: bool,
    },
    /// Build, serve every function binary on the emulator, and rebuild on source changes.
    Watch {
        #[command(flatten)]
        build: Build,
        /// The Invoke API port (0 picks a free one).
        #[arg(long, default_value_t = 9000)]
        port: u16,
        /// A directory of external extensions to launch, like /opt/extensions.
        #[arg(long, value_name = "DIR")]
        extensions_dir: Option<PathBuf>,
        /// Function timeout in seconds.
        #[arg(long)]
        timeout: Option<f64>,
        /// Also serve the functions as Function URLs on this port (0 picks a free one).
        #[arg(long, value_name = "PORT")]
        url_port: Option<u16>,
        /// Invocations one environment runs at once (AWS_LAMBDA_MAX_CONCURRENCY).
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
        max_concurrency: u32,
    },
    /// Invoke a function on a running emulator and print the answer.
    Invoke {
        /// The function's name.
        name: String,
        /// The event, as JSON.
        #[arg(long, conflicts_with_all = ["data_file", "example"])]
        data: Option<String>,
        /// A file holding the event.
        #[arg(long, value_name = "FILE", conflicts_with = "example")]
        data_file: Option<PathBuf>,
        /// A sample event (see `cargo ironlambda events`).
        #[arg(long, value_name = "EVENT")]
        example: Option<String>,
        /// The emulator's port.
        #[arg(long, default_value_t = 9000)]
        port: u16,
    },
    /// List the sample events, or print one.
    Events {
        /// The sample to print.
        name: Option<String>,
    },
}

fn main() -> ExitCode {
    // `cargo ironlambda …` runs `cargo-ironlambda ironlambda …`.
    let args = std::env::args_os()
        .enumerate()
        .filter(|(i, a)| !(*i == 1 && a == "ironlambda"))
        .map(|(_, a)| a);
    let cli = Cli::parse_from(args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cargo-ironlambda: cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cargo-ironlambda: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<ExitCode, String> {
    let here = std::env::current_dir().map_err(|e| e.to_string())?;
    match command {
        Command::Package {
            build,
            extension,
            runtime,
            target,
            static_link,
        } => {
            let options = package::PackageOptions {
                build: build::BuildOptions {
                    static_crt: static_link,
                    ..build.options(target)
                },
                extension,
                runtime,
            };
            for zip in package::package(&here, &options)? {
                let size = std::fs::metadata(&zip).map(|m| m.len() / 1024).unwrap_or(0);
                println!("{}  ({size} KiB)", zip.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch {
            build,
            port,
            extensions_dir,
            timeout,
            url_port,
            max_concurrency,
        } => {
            let options = watch::WatchOptions {
                build: build.options(None),
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                extensions_dir,
                timeout: timeout.map(Duration::from_secs_f64),
                url_port,
                max_concurrency,
            };
            watch::watch(&here, options, stopped()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Invoke {
            name,
            data,
            data_file,
            example,
            port,
        } => {
            let payload = match (data, data_file, example) {
                (Some(d), _, _) => d,
                (_, Some(f), _) => std::fs::read_to_string(&f)
                    .map_err(|e| format!("cannot read {}: {e}", f.display()))?,
                (_, _, Some(e)) => events::find(&e)?.to_owned(),
                (None, None, None) => "{}".to_owned(),
            };
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            let (text, failed) = invoke::invoke(addr, &name, payload).await?;
            println!("{text}");
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Events { name: Some(name) } => {
            print!("{}", events::find(&name)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Events { name: None } => {
            for (name, source, _) in events::EVENTS {
                println!("{name:<14} {source}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
