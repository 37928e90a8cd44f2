//! `cargo ironlambda package`: deployable zips. A function is `bootstrap` at the zip's
//! root; an extension is `extensions/<name>` (a layer, unpacked under `/opt`). Both are
//! mode 0755, with fixed timestamps, so the same binary always gives the same zip.

use std::io::Write;
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;

use crate::build::{self, BuildOptions, Built};
use crate::glibc;

/// What `package` was asked.
#[derive(Debug, Clone)]
pub struct PackageOptions {
    pub build: BuildOptions,
    /// Every binary is an extension (a layer), not only those the package declares in
    /// `[package.metadata.ironlambda] extensions`.
    pub extension: bool,
    /// `provided.al2023` or `provided.al2`.
    pub runtime: String,
}

/// Writes `binary` into a zip at `zip_path` as `name_in_zip`, executable.
pub fn write_zip(zip_path: &Path, name_in_zip: &str, binary: &Path) -> Result<(), String> {
    let bytes =
        std::fs::read(binary).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    if let Some(dir) = zip_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let file = std::fs::File::create(zip_path)
        .map_err(|e| format!("cannot create {}: {e}", zip_path.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755)
        // 1980-01-01, zip's epoch: the same input gives the same bytes.
        .last_modified_time(zip::DateTime::default());
    let failed = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", zip_path.display());
    zip.start_file(name_in_zip, options)
        .map_err(|e| failed(&e))?;
    zip.write_all(&bytes).map_err(|e| failed(&e))?;
    zip.finish().map_err(|e| failed(&e))?;
    Ok(())
}

/// The zip `built` goes into under `out`, and its path inside the zip.
pub fn zip_for(built: &Built, out: &Path, extension: bool) -> (PathBuf, String) {
    if extension {
        (
            out.join(format!("layer-{}.zip", built.name)),
            format!("extensions/{}", built.name),
        )
    } else {
        (out.join(format!("{}.zip", built.name)), "bootstrap".into())
    }
}

/// Builds (statically with `--static`, else through cargo-zigbuild for `provided.al2`),
/// checks each binary's glibc against the runtime's (a static one needs none), and writes
/// the zips under `lambda/<runtime>/<target>/` in cargo's target directory.
/// Returns the zips written, or every refusal.
pub fn package(dir: &Path, options: &PackageOptions) -> Result<Vec<PathBuf>, String> {
    let have = glibc::runtime_glibc(&options.runtime).ok_or_else(|| {
        let known: Vec<&str> = glibc::RUNTIMES.iter().map(|(n, _)| *n).collect();
        format!("unknown runtime {:?}: one of {known:?}", options.runtime)
    })?;
    let host = std::env::consts::ARCH.to_owned() + "-unknown-linux-gnu";
    let target = options.build.target.clone().unwrap_or(host);
    if options.build.static_crt && !target.ends_with("-linux-gnu") {
        let musl = if target.contains("-musl") {
            " (a musl binary is static already: package it without --static)"
        } else {
            ""
        };
        return Err(format!(
            "--static links glibc into the binary, for a *-linux-gnu target, not {target}{musl}"
        ));
    }
    if !build::target_installed(&target) {
        return Err(format!(
            "the Rust target {target} is not installed: `rustup target add {target}` installs it (building for it also needs a linker for it: cargo-zigbuild brings one)"
        ));
    }
    let mut build_options = options.build.clone();
    if build_options.static_crt {
        // Static binaries need no glibc from the runtime, so no cargo-zigbuild either. The
        // target is always named, to keep build scripts and proc macros dynamic.
        build_options.target = Some(target.clone());
    } else if options.runtime == "provided.al2" {
        if !build::zigbuild_available() {
            return Err(format!(
                "provided.al2 has glibc {}.{}, older than this machine's: its binaries must be linked against it with cargo-zigbuild, which is not installed.\n  fix: pip install ziglang cargo-zigbuild (or package for provided.al2023)",
                have.0, have.1
            ));
        }
        build_options.zig = true;
        build_options.target = Some(format!("{target}.{}.{}", have.0, have.1));
    }
    let built = build::build(dir, &build_options)?;
    if built.is_empty() {
        return Err("cargo built no binary: nothing to package".into());
    }
    let metadata = build::metadata(dir)?;
    let extensions = metadata.extensions();
    let out = metadata
        .target_directory
        .join("lambda")
        .join(&options.runtime)
        .join(&target);
    let mut refusals = Vec::new();
    let mut written = Vec::new();
    for b in &built {
        if let Some(refusal) = glibc::verdict(&b.name, glibc::required(&b.path)?, &options.runtime)
        {
            refusals.push(refusal);
            continue;
        }
        let extension = options.extension || extensions.contains(&b.name);
        let (zip_path, inside) = zip_for(b, &out, extension);
        write_zip(&zip_path, &inside, &b.path)?;
        written.push(zip_path);
    }
    if refusals.is_empty() {
        Ok(written)
    } else {
        Err(refusals.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zip_holds_one_executable_entry_and_is_reproducible() {
        let dir = std::env::temp_dir().join(format!("ironlambda-zip-{}", std::process::id()));
        let binary = dir.join("bin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&binary, b"\x7fELF pretend").unwrap();
        let (a, b) = (dir.join("a.zip"), dir.join("b.zip"));
        write_zip(&a, "bootstrap", &binary).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        write_zip(&b, "bootstrap", &binary).unwrap();
        let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(a_bytes, b_bytes, "the same input gives the same zip");
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&a).unwrap()).unwrap();
        assert_eq!(zip.len(), 1);
        let entry = zip.by_index(0).unwrap();
        assert_eq!(entry.name(), "bootstrap");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn functions_are_bootstrap_and_extensions_go_under_extensions() {
        let built = Built {
            name: "watcher".into(),
            path: "/t/watcher".into(),
        };
        let out = Path::new("/out");
        assert_eq!(
            zip_for(&built, out, false),
            (PathBuf::from("/out/watcher.zip"), "bootstrap".into())
        );
        assert_eq!(
            zip_for(&built, out, true),
            (
                PathBuf::from("/out/layer-watcher.zip"),
                "extensions/watcher".into()
            )
        );
    }
}
