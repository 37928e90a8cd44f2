//! Building through cargo, and asking cargo what it built.
//!
//! Every path comes from cargo itself: the binaries from the `compiler-artifact` messages of
//! `cargo build --message-format=json`, the target directory from `cargo metadata`. So
//! `CARGO_TARGET_DIR`, profiles, features and workspaces are honoured without this tool
//! knowing about any of them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--bin` names; empty means every binary of the package (or workspace).
    pub bins: Vec<String>,
    pub release: bool,
    /// A cargo profile; wins over `release`.
    pub profile: Option<String>,
    /// A Rust target triple (with a `.2.26` glibc suffix for cargo-zigbuild).
    pub target: Option<String>,
    /// `--features`, passed through.
    pub features: Vec<String>,
    /// Build with `cargo zigbuild` instead of `cargo build`.
    pub zig: bool,
    /// Link the binaries statically (`-C target-feature=+crt-static`); needs `target`.
    pub static_crt: bool,
}

/// A binary cargo built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Deserialize)]
struct Message {
    reason: String,
    #[serde(default)]
    target: Option<Target>,
    #[serde(default)]
    executable: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// The cargo to run: the one that runs us (`cargo ironlambda` sets `CARGO`), else `cargo`.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds in `dir` and returns the binaries built, or cargo's failure (its diagnostics went
/// to the terminal as cargo rendered them).
pub fn build(dir: &Path, options: &BuildOptions) -> Result<Vec<Built>, String> {
    let mut cmd = cargo();
    cmd.current_dir(dir)
        .arg(if options.zig { "zigbuild" } else { "build" })
        .arg("--message-format=json-render-diagnostics");
    for bin in &options.bins {
        cmd.args(["--bin", bin]);
    }
    if options.bins.is_empty() {
        cmd.arg("--bins");
    }
    match (&options.profile, options.release) {
        (Some(profile), _) => {
            cmd.args(["--profile", profile]);
        }
        (None, true) => {
            cmd.arg("--release");
        }
        (None, false) => {}
    }
    if let Some(target) = &options.target {
        cmd.args(["--target", target]);
        if options.static_crt {
            link_statically(&mut cmd, target);
        }
    }
    if !options.features.is_empty() {
        cmd.args(["--features", &options.features.join(",")]);
    }
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let built = artifacts(&String::from_utf8_lossy(&output.stdout));
    if !output.status.success() {
        return Err(format!("cargo build failed ({})", output.status));
    }
    Ok(built)
}

/// Where `-C target-feature=+crt-static` goes so that cargo reads it.
#[derive(Debug, PartialEq, Eq)]
enum StaticFlag {
    /// This variable, set to this value (the user's flags, then ours).
    Variable(&'static str, OsString),
    /// A `--config` argument.
    Config(String),
}

/// Cargo takes its flags from the first source that is set: `CARGO_ENCODED_RUSTFLAGS`
/// (`encoded`), `RUSTFLAGS` (`plain`), else `target.<triple>.rustflags` in its config (which
/// then shadows `build.rustflags`). The flag joins the variable that is set, else goes in
/// that config key, where cargo appends it to the user's own entries. With `--target`, build
/// scripts and proc macros, which must stay dynamic, get none of these.
fn static_flag(encoded: Option<OsString>, plain: Option<OsString>, target: &str) -> StaticFlag {
    const FLAG: &str = "-Ctarget-feature=+crt-static";
    if let Some(mut flags) = encoded {
        if !flags.is_empty() {
            flags.push("\x1f");
        }
        flags.push(FLAG);
        StaticFlag::Variable("CARGO_ENCODED_RUSTFLAGS", flags)
    } else if let Some(mut flags) = plain {
        flags.push(" ");
        flags.push(FLAG);
        StaticFlag::Variable("RUSTFLAGS", flags)
    } else {
        StaticFlag::Config(format!("target.{target}.rustflags=[\"{FLAG}\"]"))
    }
}

/// Makes `cmd` link its binaries for `target` statically (see [`static_flag`]).
fn link_statically(cmd: &mut Command, target: &str) {
    let encoded = std::env::var_os("CARGO_ENCODED_RUSTFLAGS");
    match static_flag(encoded, std::env::var_os("RUSTFLAGS"), target) {
        StaticFlag::Variable(name, value) => cmd.env(name, value),
        StaticFlag::Config(value) => cmd.arg("--config").arg(value),
    };
}

/// The binaries among cargo's JSON messages.
pub fn artifacts(messages: &str) -> Vec<Built> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Message>(line).ok())
        .filter(|m| m.reason == "compiler-artifact")
        .filter_map(|m| {
            let target = m.target?;
            let path = m.executable?;
            target.kind.iter().any(|k| k == "bin").then_some(Built {
                name: target.name,
                path,
            })
        })
        .collect()
}

/// What cargo says of the package (or workspace) in `dir`.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub target_directory: PathBuf,
    pub packages: Vec<Package>,
}

/// A package of the workspace.
#[derive(Debug, Deserialize)]
pub struct Package {
    pub manifest_path: PathBuf,
    /// `[package.metadata]`; this tool reads `ironlambda.extensions`.
    #[serde(default)]
    pub metadata: serde_json::Value,
}

impl Metadata {
    /// The packages' directories.
    pub fn package_dirs(&self) -> Vec<PathBuf> {
        self.packages
            .iter()
            .filter_map(|p| p.manifest_path.parent().map(Path::to_path_buf))
            .collect()
    }

    /// The binaries the packages declare as extensions, in
    /// `[package.metadata.ironlambda] extensions = ["name", …]`.
    pub fn extensions(&self) -> Vec<String> {
        self.packages
            .iter()
            .filter_map(|p| p.metadata["ironlambda"]["extensions"].as_array())
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect()
    }
}

/// `cargo metadata` for the package in `dir`.
pub fn metadata(dir: &Path) -> Result<Metadata, String> {
    let output = cargo()
        .current_dir(dir)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed ({})", output.status));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("cannot read cargo metadata: {e}"))
}

/// Whether the standard library for `target` is installed (`rustup target add` puts it in
/// the sysroot).
pub fn target_installed(target: &str) -> bool {
    let sysroot = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    sysroot.is_some_and(|root| root.join("lib/rustlib").join(target).join("lib").is_dir())
}

/// Whether `cargo zigbuild` runs here.
pub fn zigbuild_available() -> bool {
    cargo()
        .args(["zigbuild", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_flag_joins_the_rustflags_cargo_will_read() {
        let target = "x86_64-unknown-linux-gnu";
        assert_eq!(
            static_flag(None, None, target),
            StaticFlag::Config(
                r#"target.x86_64-unknown-linux-gnu.rustflags=["-Ctarget-feature=+crt-static"]"#
                    .into()
            )
        );
        assert_eq!(
            static_flag(None, Some("-Ctarget-cpu=native".into()), target),
            StaticFlag::Variable(
                "RUSTFLAGS",
                "-Ctarget-cpu=native -Ctarget-feature=+crt-static".into()
            )
        );
        assert_eq!(
            static_flag(
                Some("-C\x1ftarget-cpu=native".into()),
                Some("ignored".into()),
                target
            ),
            StaticFlag::Variable(
                "CARGO_ENCODED_RUSTFLAGS",
                "-C\x1ftarget-cpu=native\x1f-Ctarget-feature=+crt-static".into()
            )
        );
        assert_eq!(
            static_flag(Some("".into()), None, target),
            StaticFlag::Variable(
                "CARGO_ENCODED_RUSTFLAGS",
                "-Ctarget-feature=+crt-static".into()
            )
        );
    }

    #[test]
    fn extensions_are_declared_in_package_metadata() {
        let metadata: Metadata = serde_json::from_str(
            r#"{"target_directory":"/t","packages":[
                {"manifest_path":"/w/a/Cargo.toml","metadata":{"ironlambda":{"extensions":["watcher"]}}},
                {"manifest_path":"/w/b/Cargo.toml","metadata":null}]}"#,
        )
        .unwrap();
        assert_eq!(metadata.extensions(), ["watcher"]);
        assert_eq!(
            metadata.package_dirs(),
            [PathBuf::from("/w/a"), PathBuf::from("/w/b")]
        );
    }

    #[test]
    fn binaries_are_read_from_cargos_messages() {
        let messages = [
            r#"{"reason":"compiler-artifact","target":{"name":"serde","kind":["lib"]},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"build-script-build","kind":["custom-build"]},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"hello","kind":["bin"]},"executable":"/t/debug/hello"}"#,
            r#"{"reason":"build-finished","success":true}"#,
            "not json at all",
        ]
        .join("\n");
        assert_eq!(
            artifacts(&messages),
            [Built {
                name: "hello".into(),
                path: "/t/debug/hello".into()
            }]
        );
    }
}
