//! `cargo ironlambda` end to end: packaging this workspace's examples, invoking a running
//! emulator, and watching a crate of its own outside the workspace.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ironlambda_emulator::Emulator;

const PATIENCE: Duration = Duration::from_secs(120);

fn tool() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cargo-ironlambda"));
    c.arg("ironlambda");
    c
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Cargo's target directory for this workspace (where `make test` built the examples).
fn target_dir() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    PathBuf::from(v["target_directory"].as_str().unwrap())
}

/// Where `package` writes zips for provided.al2023 on this machine's architecture.
fn al2023_zips() -> PathBuf {
    target_dir()
        .join("lambda/provided.al2023")
        .join(format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
}

/// Checks that zip `name` in `dir` holds exactly `inside`, executable.
fn assert_zip(dir: &Path, name: &str, inside: &str) {
    assert_eq!(
        zip_entries(&dir.join(name)),
        [(inside.to_owned(), Some(0o755))],
        "{name}"
    );
}

fn zip_entries(path: &Path) -> Vec<(String, Option<u32>)> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| {
            let e = zip.by_index(i).unwrap();
            (e.name().to_owned(), e.unix_mode().map(|m| m & 0o777))
        })
        .collect()
}

/// Runs `command` and fails the test with its stderr unless it succeeds.
fn succeed(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cargo ironlambda package ARGS` in the examples crate.
fn package_examples(args: &[&str]) {
    succeed(
        tool()
            .arg("package")
            .args(args)
            .current_dir(workspace().join("examples")),
    );
}

#[test]
fn package_writes_functions_as_bootstrap_and_declared_extensions_as_layers() {
    // The examples crate declares telemetry-summary an extension in its metadata.
    package_examples(&["--bin", "hello", "--bin", "telemetry-summary"]);
    let dir = al2023_zips();
    assert_zip(&dir, "hello.zip", "bootstrap");
    assert_zip(
        &dir,
        "layer-telemetry-summary.zip",
        "extensions/telemetry-summary",
    );
    // --extension makes any binary a layer.
    package_examples(&["--extension", "--bin", "internal-extension"]);
    assert_zip(
        &dir,
        "layer-internal-extension.zip",
        "extensions/internal-extension",
    );
}

/// Runs `cargo ironlambda package ARGS` in the examples crate, expecting a refusal, and
/// returns what it printed on stderr.
fn package_refusal(args: &[&str]) -> String {
    let out = tool()
        .arg("package")
        .args(args)
        .current_dir(workspace().join("examples"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "package {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn an_uninstalled_target_is_a_clear_error() {
    let stderr = package_refusal(&["--bin", "hello", "--target", "riscv64gc-unknown-linux-gnu"]);
    assert!(
        stderr.contains("rustup target add riscv64gc-unknown-linux-gnu"),
        "{stderr}"
    );
}

#[test]
fn static_for_a_musl_target_says_it_is_static_already() {
    let stderr = package_refusal(&["--static", "--target", "x86_64-unknown-linux-musl"]);
    assert!(
        stderr.contains("a musl binary is static already"),
        "{stderr}"
    );
}

/// For provided.al2 (glibc 2.26) the binary is built through cargo-zigbuild, and the zip
/// only written when its binary needs no newer glibc; without cargo-zigbuild, the error
/// says how to install it.
#[test]
fn provided_al2_builds_through_cargo_zigbuild_or_says_how_to_get_it() {
    let zig = Command::new(env!("CARGO"))
        .args(["zigbuild", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let out = tool()
        .args(["package", "--bin", "hello", "--runtime", "provided.al2"])
        .current_dir(workspace().join("examples"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !zig {
        eprintln!("note: cargo-zigbuild is not installed; checking only the advice");
        assert!(!out.status.success());
        assert!(
            stderr.contains("pip install ziglang cargo-zigbuild"),
            "{stderr}"
        );
        return;
    }
    assert!(out.status.success(), "{stderr}");
    let dir = target_dir()
        .join("lambda/provided.al2")
        .join(format!("{}-unknown-linux-gnu", std::env::consts::ARCH));
    assert_zip(&dir, "hello.zip", "bootstrap");
}

/// A binary `make test` built into this workspace's target directory.
fn built(name: &str) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `make test`",
        path.display()
    );
    path
}

// Multi-thread: the tool runs as a blocking child process while the emulator serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_prints_the_answer_and_a_function_errors_type() {
    let emulator = Emulator::builder(built("order")).start().await.unwrap();
    let port = emulator.addr().port().to_string();
    let run = |args: Vec<&str>| {
        let mut c = tool();
        c.arg("invoke").args(args).args(["--port", &port]);
        c.output().unwrap()
    };
    let ok = run(vec!["order", "--data", r#"{"item":"tea","quantity":"2"}"#]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let failed = run(vec![
        "order",
        "--data",
        r#"{"item":"tea","quantity":"two"}"#,
    ]);
    assert!(!failed.status.success());
    let text = String::from_utf8_lossy(&failed.stdout);
    assert!(text.starts_with("function error ParseIntError: "), "{text}");
    let sample = run(vec!["order", "--example", "sqs"]);
    let text = String::from_utf8_lossy(&sample.stdout);
    assert!(
        text.contains("errorType"),
        "the order function refuses an SQS event: {text}"
    );
    emulator.shutdown().await;
}

/// A crate of its own named `name`, outside the workspace, depending on ironlambda by path:
/// the function `name` (`src/main.rs`) and, with `extension`, the extension `watcher`
/// (`src/bin/watcher.rs`), declared as one in the package metadata. (Tests that share the
/// target directory use different names, so they never build over each other's binaries.)
fn scratch_crate(dir: &Path, name: &str, greeting: &str, extension: bool) {
    std::fs::create_dir_all(dir.join("src/bin")).unwrap();
    let path = |member: &str| workspace().join(member).display().to_string();
    let mut manifest = format!(
        "[package]\nname = {name:?}\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nironlambda-runtime = {{ path = {:?} }}\nserde_json = \"1\"\n",
        path("runtime")
    );
    if extension {
        manifest.push_str(&format!(
            "ironlambda-extension = {{ path = {:?} }}\ntokio = {{ version = \"1\", features = [\"macros\", \"rt\"] }}\n\n[package.metadata.ironlambda]\nextensions = [\"watcher\"]\n",
            path("extension")
        ));
        std::fs::write(
            dir.join("src/bin/watcher.rs"),
            "#[tokio::main(flavor = \"current_thread\")]\nasync fn main() -> Result<(), ironlambda_extension::Error> {\n    ironlambda_extension::Extension::new().on_invoke(|_| async { Ok(()) }).run().await\n}\n",
        )
        .unwrap();
    }
    manifest.push_str("\n[workspace]\n");
    std::fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    // The workspace's lock file, so the crate builds with the same dependencies (already
    // built in the shared target directory).
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    write_main(dir, greeting);
}

/// A crate outside this workspace, packaged: its function as `bootstrap`, its declared
/// extension as a layer, both executable.
#[test]
fn package_works_in_a_crate_outside_the_workspace() {
    let dir = std::env::temp_dir().join(format!("ironlambda-package-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    scratch_crate(&dir, "parcel", r#"Ok("hello".into())"#, true);
    succeed(
        tool()
            .arg("package")
            .current_dir(&dir)
            // Shared with the workspace so dependencies are not built again; the zips land
            // under it, as under any CARGO_TARGET_DIR.
            .env("CARGO_TARGET_DIR", target_dir()),
    );
    let zips = al2023_zips();
    assert_zip(&zips, "parcel.zip", "bootstrap");
    assert_zip(&zips, "layer-watcher.zip", "extensions/watcher");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--static` writes a bootstrap that names no dynamic loader (`PT_INTERP`), so it needs no
/// glibc from the runtime, and that bootstrap serves invocations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn package_static_writes_a_bootstrap_without_a_dynamic_loader_that_serves_invocations() {
    let dir = std::env::temp_dir().join(format!("ironlambda-static-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    scratch_crate(&dir, "anchor", r#"Ok("linked in".into())"#, false);
    succeed(
        tool()
            .args(["package", "--static"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", target_dir()),
    );
    let zip = al2023_zips().join("anchor.zip");
    assert_zip(zip.parent().unwrap(), "anchor.zip", "bootstrap");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let mut bootstrap = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("bootstrap").unwrap(), &mut bootstrap).unwrap();
    assert!(
        !names_an_interpreter(&bootstrap),
        "the bootstrap is linked dynamically"
    );
    let dynamic = std::fs::read(env!("CARGO_BIN_EXE_cargo-ironlambda")).unwrap();
    assert!(
        names_an_interpreter(&dynamic),
        "a dynamic binary names its loader"
    );
    let unpacked = dir.join("bootstrap");
    std::fs::write(&unpacked, &bootstrap).unwrap();
    std::fs::set_permissions(
        &unpacked,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let emulator = Emulator::builder(&unpacked).start().await.unwrap();
    let answer = emulator.invoke("{}").await.unwrap();
    assert_eq!(answer.json().unwrap(), "linked in");
    emulator.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether an ELF file has a `PT_INTERP` program header: the path of the dynamic loader
/// that a dynamically linked binary needs.
fn names_an_interpreter(bytes: &[u8]) -> bool {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let elf = ElfFile64::<object::Endianness>::parse(bytes).unwrap();
    let endian = elf.endian();
    elf.elf_program_headers()
        .iter()
        .any(|h| h.p_type(endian) == object::elf::PT_INTERP)
}

fn write_main(dir: &Path, body: &str) {
    std::fs::write(
        dir.join("src/main.rs"),
        format!(
            "use ironlambda_runtime::{{Context, Error, handler_fn}};\nasync fn greet(_: serde_json::Value, _: Context) -> Result<String, Error> {{ {body} }}\nfn main() -> Result<(), Error> {{ ironlambda_runtime::start(handler_fn(greet)) }}\n"
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_serves_a_crate_and_replaces_it_on_change_keeping_the_last_good_build() {
    let dir = std::env::temp_dir().join(format!("ironlambda-watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    scratch_crate(&dir, "greeter", r#"Ok("hello one".into())"#, false);
    let mut watcher = tool()
        .args(["watch", "--port", "0", "--url-port", "0"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stdout = watcher.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |needle: &str| -> String {
        let deadline = Instant::now() + PATIENCE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}");
    };
    let serving = wait_for("cargo-ironlambda: serving greeter at http://");
    let addr: std::net::SocketAddr = serving
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let invoke = || async {
        ironlambda_emulator::send(
            addr,
            ironlambda_emulator::invoke_request(addr, "greeter", "{}"),
        )
        .await
        .unwrap()
        .json()
        .unwrap()
    };
    assert_eq!(invoke().await, "hello one");
    // The Function URL front door answers plain HTTP with the function's JSON.
    let url_line = wait_for("cargo-ironlambda: Function URLs on http://");
    let url_addr = url_line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_owned();
    let get = || {
        use std::io::{Read, Write};
        let mut sock = std::net::TcpStream::connect(&url_addr).unwrap();
        sock.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        sock.read_to_string(&mut answer).unwrap();
        answer
    };
    let answer = get();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("\"hello one\""),
        "{answer}"
    );

    // A change that does not build: the last good build keeps serving.
    write_main(&dir, "this does not compile");
    wait_for("a source changed");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(invoke().await, "hello one");

    write_main(&dir, r#"Ok("hello two".into())"#);
    wait_for("rebuilt; serving the new build");
    wait_for("cargo-ironlambda: serving greeter");
    assert_eq!(invoke().await, "hello two");
    // The new build serves its Function URL on the same port.
    assert_eq!(wait_for("cargo-ironlambda: Function URLs on"), url_line);
    assert!(get().ends_with("\"hello two\""));

    // SAFETY: plain FFI call on our own, not yet reaped, child.
    unsafe { libc::kill(watcher.id() as libc::pid_t, libc::SIGTERM) };
    assert!(watcher.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}
