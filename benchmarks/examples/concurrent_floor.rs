//! The floor of the concurrency cases: `shared/floor_loop.rs` on `AWS_LAMBDA_MAX_CONCURRENCY`
//! threads, each with its own connection, each invocation sleeping its thread 5 ms (a
//! `nanosleep`, late by the kernel's timer slack only). Whatever timer a row's subjects
//! use, this is the most a machine gives N loops that wait 5 ms each.

#[path = "shared/floor_loop.rs"]
mod floor_loop;

use std::time::Duration;

fn main() -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(std::io::Error::other)?;
    let loops: usize = std::env::var("AWS_LAMBDA_MAX_CONCURRENCY")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let threads: Vec<_> = (0..loops)
        .map(|_| {
            let api = api.clone();
            std::thread::spawn(move || floor_loop::serve(&api, Some(Duration::from_millis(5))))
        })
        .collect();
    for thread in threads {
        thread
            .join()
            .map_err(|_| std::io::Error::other("a loop panicked"))??;
    }
    Ok(())
}
