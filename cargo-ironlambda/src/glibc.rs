//! Which glibc a binary needs, and whether a Lambda runtime has it.
//!
//! A binary linked against a newer glibc than the runtime's fails at init with `version
//! GLIBC_2.xx not found`, after the deploy. The highest `GLIBC_x.y` in the ELF file's
//! version-needs table says it before. A static binary carries its own glibc and needs none.

use std::path::Path;

use object::Endianness;
use object::read::elf::ElfFile64;

/// A glibc version, `(2, 34)`.
pub type Version = (u32, u32);

/// The Lambda OS-only runtimes and their glibc.
pub const RUNTIMES: [(&str, Version); 2] =
    [("provided.al2023", (2, 34)), ("provided.al2", (2, 26))];

/// The glibc of `runtime`, if it is one of [`RUNTIMES`].
pub fn runtime_glibc(runtime: &str) -> Option<Version> {
    RUNTIMES
        .iter()
        .find(|(name, _)| *name == runtime)
        .map(|(_, v)| *v)
}

/// `GLIBC_2.34` → `(2, 34)`; anything else → `None`.
fn parse(text: &str) -> Option<Version> {
    let mut parts = text.strip_prefix("GLIBC_")?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// The highest glibc version the 64-bit ELF binary at `path` needs (`None`: no glibc
/// symbol versions: a static binary).
pub fn required(path: &Path) -> Result<Option<Version>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let elf = ElfFile64::<Endianness>::parse(&*data)
        .map_err(|e| format!("{} is not a 64-bit ELF binary: {e}", path.display()))?;
    let endian = elf.endian();
    let sections = elf.elf_section_table();
    let bad = |e: object::Error| format!("{}: {e}", path.display());
    let Some((mut needs, link)) = sections.gnu_verneed(endian, &*data).map_err(bad)? else {
        return Ok(None);
    };
    let strings = sections.strings(endian, &*data, link).map_err(bad)?;
    let mut best = None;
    while let Some((_, mut versions)) = needs.next().map_err(bad)? {
        while let Some(version) = versions.next().map_err(bad)? {
            let name = version.name(endian, strings).map_err(bad)?;
            if let Some(v) = parse(&String::from_utf8_lossy(name)) {
                best = best.max(Some(v));
            }
        }
    }
    Ok(best)
}

/// `None` when a binary `name` needing `required` runs on `runtime`, else why not and how
/// to fix it.
pub fn verdict(name: &str, required: Option<Version>, runtime: &str) -> Option<String> {
    let have = runtime_glibc(runtime)?;
    let need = required.filter(|r| *r > have)?;
    let (need, have) = (
        format!("{}.{}", need.0, need.1),
        format!("{}.{}", have.0, have.1),
    );
    Some(format!(
        "{name} needs glibc {need} but {runtime} has glibc {have}: it would fail at init with \
         'version GLIBC_{need} not found'.\n  fix: package for provided.al2023 (--runtime \
         provided.al2023), or build against glibc {have} with cargo-zigbuild (pip install \
         ziglang cargo-zigbuild; `cargo ironlambda package` uses it when installed), or link \
         glibc in (`cargo ironlambda package --static`)."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_symbol_version_names() {
        assert_eq!(parse("GLIBC_2.34"), Some((2, 34)));
        assert_eq!(parse("GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(parse("GLIBC_PRIVATE"), None);
        assert_eq!(parse("GCC_3.0"), None);
    }

    #[test]
    fn a_binary_needing_a_newer_glibc_is_refused_with_the_fix() {
        assert_eq!(verdict("f", Some((2, 34)), "provided.al2023"), None);
        assert_eq!(verdict("f", None, "provided.al2"), None);
        let refusal = verdict("f", Some((2, 28)), "provided.al2").unwrap();
        assert!(refusal.contains("needs glibc 2.28 but provided.al2 has glibc 2.26"));
        assert!(refusal.contains("cargo-zigbuild"));
    }

    /// A real binary whose version-needs table names a glibc no runtime has (this test's
    /// own executable, with one `GLIBC_2.` rewritten to `GLIBC_9.` in place) is read as
    /// needing it, and refused with the fix.
    #[test]
    fn a_binary_linked_against_a_newer_glibc_is_read_and_refused() {
        let mut bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let at = bytes
            .windows(8)
            .position(|w| w == b"GLIBC_2.")
            .expect("a glibc version name");
        bytes[at + 6] = b'9';
        let path = std::env::temp_dir().join(format!("ironlambda-glibc-{}", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let needed = required(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(needed.is_some_and(|(major, _)| major == 9), "{needed:?}");
        let refusal = verdict("f", needed, "provided.al2023").expect("refused");
        assert!(refusal.contains("would fail at init"), "{refusal}");
    }

    #[test]
    fn this_test_binary_needs_some_glibc() {
        // The test executable itself is a glibc-linked ELF file.
        let exe = std::env::current_exe().unwrap();
        let needed = required(&exe).unwrap();
        assert!(needed.is_some_and(|v| v >= (2, 2)), "{needed:?}");
    }
}
