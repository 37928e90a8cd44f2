//! `cargo ironlambda watch`: build, serve every function binary of the crate (all but the
//! extensions declared in `[package.metadata.ironlambda]`) from one emulator (one Invoke
//! API port, each function in environments of its own), and on a source change rebuild and
//! replace them. A build error is printed and the last good build keeps serving.
//!
//! Changes are found by polling the packages' files (their sizes and modification times)
//! twice a second: portable, and cheap for a crate's sources. A replacement waits for the
//! invocations under way (the emulator's shutdown lets them finish), then serves again on
//! the same port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ironlambda_emulator::Emulator;

use crate::build::{self, BuildOptions, Built};

/// How often the sources are looked at.
const POLL: Duration = Duration::from_millis(500);
/// At most this many files are looked at per package, so a stray huge directory cannot
/// make each poll unbounded (links to directories are not followed).
const MAX_FILES: usize = 20_000;

/// What `watch` was asked.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub build: BuildOptions,
    pub addr: SocketAddr,
    pub extensions_dir: Option<PathBuf>,
    pub timeout: Option<Duration>,
    /// Serve the functions as Function URLs on this port too (0: any free one).
    pub url_port: Option<u16>,
    /// Invocations one environment runs at once (`AWS_LAMBDA_MAX_CONCURRENCY`).
    pub max_concurrency: u32,
}

/// A summary of the sources that changes when any of them does: every file's path, size
/// and modification time, outside cargo's target directory `skip` (wherever
/// `CARGO_TARGET_DIR` puts it) and hidden directories.
fn fingerprint(dirs: &[PathBuf], skip: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut seen = Vec::new();
    for dir in dirs {
        let mut pending = vec![dir.clone()];
        let mut files = 0;
        while let Some(d) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') || entry.path() == skip {
                    continue;
                }
                // Directories are entered only when they are real ones: a link to a
                // directory (perhaps a parent) could make the walk go round forever.
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    pending.push(entry.path());
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_file() && files < MAX_FILES {
                    files += 1;
                    seen.push((entry.path(), meta.len(), meta.modified().ok()));
                }
            }
        }
    }
    seen.sort();
    seen
}

/// Starts an emulator serving every binary in `built` on `addr` (and its Function URLs on
/// `url_port`).
async fn serve(
    built: &[Built],
    options: &WatchOptions,
    addr: SocketAddr,
    url_port: Option<u16>,
) -> Result<Emulator, String> {
    let (first, more) = built
        .split_first()
        .ok_or("cargo built no binary: nothing to serve")?;
    let mut builder = Emulator::builder(&first.path)
        .name(&first.name)
        .addr(addr)
        .echo_logs(true);
    for b in more {
        builder = builder.function(&b.name, &b.path);
    }
    if let Some(dir) = &options.extensions_dir {
        builder = builder.extensions_dir(dir);
    }
    if let Some(timeout) = options.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(port) = url_port {
        builder = builder.url_port(port);
    }
    builder = builder.max_concurrency(options.max_concurrency);
    // The port of the build being replaced may take a moment to be free.
    let mut last_error = String::new();
    for _ in 0..20 {
        match builder.clone().start().await {
            Ok(emulator) => return Ok(emulator),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                last_error = e.to_string();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(last_error)
}

fn announce(emulator: &Emulator) {
    for f in emulator.functions() {
        println!(
            "cargo-ironlambda: serving {} at http://{}/2015-03-31/functions/{}/invocations",
            f.name,
            emulator.addr(),
            f.name
        );
    }
    if let Some(url) = emulator.function_url() {
        println!(
            "cargo-ironlambda: Function URLs on {url} (the first path segment names the function when there are several)"
        );
    }
}

/// Runs until `stop` resolves (Ctrl-C or SIGTERM), then shuts the emulator down.
pub async fn watch(
    dir: &Path,
    options: WatchOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let metadata = build::metadata(dir)?;
    let dirs = metadata.package_dirs();
    // Binaries declared as extensions are not functions: run them with --extensions-dir.
    let extensions = metadata.extensions();
    // The walk reads the file system: off the async threads.
    let look = || {
        let (dirs, skip) = (dirs.clone(), metadata.target_directory.clone());
        tokio::task::spawn_blocking(move || fingerprint(&dirs, &skip))
    };
    let mut seen = look().await.map_err(|e| e.to_string())?;
    let build_now = || {
        let (dir, build) = (dir.to_path_buf(), options.build.clone());
        let extensions = extensions.clone();
        tokio::task::spawn_blocking(move || {
            build::build(&dir, &build).map(|built| {
                built
                    .into_iter()
                    .filter(|b| !extensions.contains(&b.name))
                    .collect::<Vec<_>>()
            })
        })
    };
    let mut serving: Option<Emulator> = None;
    // A rebuild serves again on the ports the first build got (when 0 asked for any).
    let mut addr = options.addr;
    let mut url_port = options.url_port;
    match build_now().await.map_err(|e| e.to_string())? {
        Ok(built) => {
            let emulator = serve(&built, &options, addr, url_port).await?;
            addr = emulator.addr();
            url_port = emulator.url_addr().map(|a| a.port());
            announce(&emulator);
            serving = Some(emulator);
        }
        Err(e) => eprintln!("cargo-ironlambda: {e}; waiting for a change"),
    }
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(POLL) => {}
        }
        let now = look().await.map_err(|e| e.to_string())?;
        if now == seen {
            continue;
        }
        seen = now;
        println!("cargo-ironlambda: a source changed; rebuilding");
        match build_now().await.map_err(|e| e.to_string())? {
            Ok(built) => {
                if let Some(old) = serving.take() {
                    // Invocations under way finish first.
                    old.shutdown().await;
                }
                let emulator = serve(&built, &options, addr, url_port).await?;
                addr = emulator.addr();
                url_port = emulator.url_addr().map(|a| a.port());
                println!("cargo-ironlambda: rebuilt; serving the new build");
                announce(&emulator);
                serving = Some(emulator);
            }
            Err(e) => {
                let still = if serving.is_some() {
                    "the last good build keeps serving"
                } else {
                    "nothing is served yet"
                };
                eprintln!("cargo-ironlambda: {e}; {still}");
            }
        }
    }
    if let Some(emulator) = serving {
        emulator.shutdown().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link back to a parent directory neither loops the walk nor hides a change, and
    /// cargo's target directory (here under a name of its own) is not looked at.
    #[test]
    fn the_fingerprint_ignores_links_to_directories_and_sees_changes() {
        let dir =
            std::env::temp_dir().join(format!("ironlambda-fingerprint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/main.rs"), "fn main() {}").unwrap();
        std::os::unix::fs::symlink(&dir, dir.join("src/loop")).unwrap();
        let built = dir.join("build-output");
        std::fs::create_dir_all(&built).unwrap();
        std::fs::write(built.join("out"), "built").unwrap();
        let look = || fingerprint(std::slice::from_ref(&dir), &built);
        let before = look();
        assert_eq!(before.len(), 1, "{before:?}");
        std::fs::write(dir.join("src/main.rs"), "fn main() { }").unwrap();
        assert_ne!(look(), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
