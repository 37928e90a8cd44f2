//! AWS Lambda extensions in Rust.
//!
//! This crate is a placeholder while the Extensions API is built: it currently exposes only
//! the name under which an external extension registers, which Lambda matches against the
//! executable's file name in `/opt/extensions`.

/// The name an external extension registers under: its executable's file name.
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
