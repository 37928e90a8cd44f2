//! ironlambda's benchmark functions that run on a current-thread runtime (`examples/`),
//! as a package of their own.
//!
//! Cargo unifies the features of a dependency across the targets of one package, so if
//! these lived with the reference's subjects and our `#[tokio::main]` ones (in
//! `ironlambda-benchmarks`), they would be built with tokio's multi-thread scheduler, which
//! a user's current-thread function does not link (and with it `libm`, loaded at every
//! start). `make bench` builds this package with `-p` on its own, so each function is what
//! a user's crate with the same code would build. The library itself is empty.
