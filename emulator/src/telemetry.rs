//! Telemetry and Logs API delivery: each subscriber gets its own task that batches events
//! by its buffering settings and posts them to its listener inside the "sandbox", which
//! locally means 127.0.0.1 (protocol.md §5).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ironlambda_api_client::telemetry::{
    Destination, TelemetryEvent, TelemetrySubscription, TelemetryType,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// How many times a batch is offered to a listener that does not answer 2xx.
const DELIVERY_ATTEMPTS: u32 = 4;
/// The first pause between attempts; it doubles.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

struct Subscriber {
    extension_id: String,
    types: Vec<TelemetryType>,
    events: mpsc::UnboundedSender<Delivery>,
}

/// What a subscriber's delivery task is told.
enum Delivery {
    Event(TelemetryEvent),
    /// Send what is batched now: the environment is shutting down, and the extension has
    /// only the shutdown budget left to receive it.
    Flush,
}

/// Every current subscription; events are fanned out to the matching ones.
#[derive(Default)]
pub(crate) struct TelemetryHub {
    subscribers: Mutex<Vec<Subscriber>>,
    /// The environment is shutting down: every event goes out as soon as it is published.
    urgent: AtomicBool,
}

impl std::fmt::Debug for TelemetryHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TelemetryHub")
    }
}

impl TelemetryHub {
    fn subscribers(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds (or replaces: subscribing is idempotent) a validated subscription and starts
    /// its delivery task.
    pub(crate) fn subscribe(&self, extension_id: &str, sub: TelemetrySubscription) {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(deliver(rx, sub.destination, sub.buffering.resolved()));
        let mut subs = self.subscribers();
        subs.retain(|s| s.extension_id != extension_id);
        subs.push(Subscriber {
            extension_id: extension_id.to_owned(),
            types: sub.types,
            events: tx,
        });
    }

    /// Whether anyone subscribed: without subscribers, records need not be built at all.
    pub(crate) fn has_subscribers(&self) -> bool {
        !self.subscribers().is_empty()
    }

    /// Sends `event` to every subscriber of `category`.
    pub(crate) fn publish(&self, category: TelemetryType, event: TelemetryEvent) {
        let urgent = self.urgent.load(Ordering::Relaxed);
        let subs = self.subscribers();
        for s in subs.iter().filter(|s| s.types.contains(&category)) {
            let _ = s.events.send(Delivery::Event(event.clone()));
            if urgent {
                let _ = s.events.send(Delivery::Flush);
            }
        }
    }

    /// The environment begins to shut down: what is batched goes out now, and so does
    /// every later event (the runtime's and extensions' last lines) while the subscribers
    /// still run.
    pub(crate) fn shutting_down(&self) {
        self.urgent.store(true, Ordering::Relaxed);
        for s in self.subscribers().iter() {
            let _ = s.events.send(Delivery::Flush);
        }
    }

    /// The environment is down: subscriptions end (a new init subscribes afresh), and
    /// their delivery tasks send what they still hold.
    pub(crate) fn close(&self) {
        self.urgent.store(false, Ordering::Relaxed);
        self.subscribers().clear();
    }
}

/// Batches events until maxItems, maxBytes or timeoutMs, then delivers the batch.
async fn deliver(
    mut events: mpsc::UnboundedReceiver<Delivery>,
    destination: Destination,
    (max_items, max_bytes, timeout_ms): (u32, u32, u32),
) {
    let mut batch: Vec<TelemetryEvent> = Vec::new();
    let mut bytes = 0usize;
    let mut flush_at = Instant::now();
    loop {
        let full = batch.len() >= max_items as usize || bytes >= max_bytes as usize;
        let ended = tokio::select! {
            event = events.recv(), if !full => match event {
                Some(Delivery::Flush) => false,
                Some(Delivery::Event(e)) => {
                    if batch.is_empty() {
                        flush_at = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
                    }
                    bytes += e.record.to_string().len() + e.kind.len() + e.time.len();
                    batch.push(e);
                    continue;
                }
                None => true,
            },
            _ = sleep_until(flush_at), if !batch.is_empty() => false,
            else => false,
        };
        if !batch.is_empty() {
            send_batch(&destination, std::mem::take(&mut batch)).await;
            bytes = 0;
        }
        if ended {
            return;
        }
    }
}

/// Offers one batch, retrying with backoff; a batch nobody takes is dropped.
async fn send_batch(destination: &Destination, batch: Vec<TelemetryEvent>) {
    let mut pause = RETRY_PAUSE;
    for _ in 0..DELIVERY_ATTEMPTS {
        let sent = match destination {
            Destination::Http { .. } => post(destination, &batch).await,
            Destination::Tcp { port } => write_ndjson(*port, &batch).await,
        };
        if sent {
            return;
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
}

async fn post(destination: &Destination, batch: &[TelemetryEvent]) -> bool {
    let Ok((port, path)) = destination.http_target() else {
        return false;
    };
    let Ok(body) = serde_json::to_vec(batch) else {
        return false;
    };
    let attempt = async {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, format!("sandbox.localdomain:{port}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .ok()?;
        let resp = sender.send_request(req).await.ok()?;
        let ok = resp.status().is_success();
        let _ = resp.into_body().collect().await;
        Some(ok)
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

async fn write_ndjson(port: u16, batch: &[TelemetryEvent]) -> bool {
    let mut text = Vec::new();
    for e in batch {
        if serde_json::to_writer(&mut text, e).is_err() {
            return false;
        }
        text.push(b'\n');
    }
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(&text).await.ok()?;
        stream.shutdown().await.ok()
    };
    tokio::time::timeout(Duration::from_secs(5), attempt)
        .await
        .ok()
        .flatten()
        .is_some()
}
