//! The floor of the echo cases: `shared/floor_loop.rs` on one connection, answering at once.

#[path = "shared/floor_loop.rs"]
mod floor_loop;

fn main() -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(std::io::Error::other)?;
    floor_loop::serve(&api, None)
}
