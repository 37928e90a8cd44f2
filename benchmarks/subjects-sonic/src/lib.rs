//! The echo benchmark function built with `ironlambda-runtime`'s `sonic` feature, as a
//! workspace of its own: cargo unifies features across the packages of a workspace build,
//! so as a member it would turn the feature on for every `cargo build --workspace` and
//! `cargo test --workspace` (the examples and the tests of the default path included).
//! `make bench` builds it with `--manifest-path` into the same target directory. The
//! library itself is empty.
