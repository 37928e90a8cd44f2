//! Invoke round trips through our emulator: callers on keep-alive connections, as the AWS
//! SDK and CLI would use it, against a function running under it.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ironlambda_emulator::{Emulator, invoke_request};
use tokio::net::TcpStream;

use crate::measure::Sample;
use crate::stats::percentile;

/// How the callers load the emulator.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub clients: usize,
    pub per_client: usize,
    /// Execution environments the emulator may run (`--environments`).
    pub environments: usize,
}

/// `load.clients` callers each invoke `load.per_client` times; returns throughput and
/// latency.
pub async fn round_trips(binary: &Path, load: Load, event: Bytes) -> Result<Sample, String> {
    let Load {
        clients,
        per_client,
        environments,
    } = load;
    let emulator = Emulator::builder(binary)
        .name("echo")
        .timeout(Duration::from_secs(60))
        .environments(environments)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    // Start every environment first (as many invokes at once); cold start is measured
    // elsewhere.
    let warm: Vec<_> = (0..environments)
        .map(|_| {
            let request = invoke_request(emulator.addr(), "echo", event.clone());
            tokio::spawn(ironlambda_emulator::send(emulator.addr(), request))
        })
        .collect();
    for w in warm {
        w.await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    let addr = emulator.addr();
    let started = Instant::now();
    let callers: Vec<_> = (0..clients)
        .map(|_| {
            let event = event.clone();
            tokio::spawn(async move {
                let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
                let _ = stream.set_nodelay(true);
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                        .await
                        .map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let sent = Instant::now();
                    let reply = sender
                        .send_request(invoke_request(addr, "echo", event.clone()))
                        .await
                        .map_err(|e| e.to_string())?;
                    if !reply.status().is_success() {
                        return Err(format!("invoke answered {}", reply.status()));
                    }
                    reply
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?;
                    latencies.push(sent.elapsed());
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(clients * per_client);
    for caller in callers {
        latencies.extend(caller.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    emulator.shutdown().await;
    latencies.sort_unstable();
    Ok(Sample {
        invocations_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_us: percentile(&latencies, 0.50).as_secs_f64() * 1e6,
        p99_us: percentile(&latencies, 0.99).as_secs_f64() * 1e6,
        cpu_us: f64::NAN,
        user_us: f64::NAN,
        peak_rss_kb: f64::NAN,
        first_byte_us: f64::NAN,
    })
}
