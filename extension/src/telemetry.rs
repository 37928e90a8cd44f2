//! Telemetry API subscription and the local listener that receives the batches.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ironlambda_api_client::telemetry::{
    Buffering, Destination, LOGS_SCHEMA_VERSIONS, SubscriptionApi, TELEMETRY_SCHEMA_VERSIONS,
    TelemetryEvent, TelemetrySubscription, TelemetryType,
};
use ironlambda_api_client::{ApiError, Client, Error, ExtensionApi, ExtensionId};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::extension::BoxFuture;

/// The sandbox's name for itself; Lambda delivers telemetry to listeners there.
const SANDBOX_HOST: &str = "sandbox.localdomain";
/// How long to wait for `sandbox.localdomain` to resolve before assuming a local run.
const LOOKUP_LIMIT: Duration = Duration::from_millis(300);

/// What to subscribe to and how deliveries are batched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    types: Vec<TelemetryType>,
    buffering: Buffering,
    port: u16,
    logs_api: bool,
}

impl Default for TelemetryConfig {
    /// Platform events and the function's logs, the platform's default buffering, any port.
    fn default() -> Self {
        TelemetryConfig {
            types: vec![TelemetryType::Platform, TelemetryType::Function],
            buffering: Buffering::default(),
            port: 0,
            logs_api: false,
        }
    }
}

impl TelemetryConfig {
    /// What to receive.
    pub fn types(mut self, types: impl IntoIterator<Item = TelemetryType>) -> Self {
        self.types = types.into_iter().collect();
        self
    }

    /// Batching (checked against Lambda's limits when the extension starts).
    pub fn buffering(mut self, buffering: Buffering) -> Self {
        self.buffering = buffering;
        self
    }

    /// The listener's port (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Subscribe through the legacy Logs API (`2020-08-15`) instead of the Telemetry API.
    /// Without it the Logs API is still used when a platform has no Telemetry API (404).
    pub fn logs_api(mut self) -> Self {
        self.logs_api = true;
        self
    }
}

pub(crate) type TelemetryFn = Arc<dyn Fn(Vec<TelemetryEvent>) -> BoxFuture<()> + Send + Sync>;

/// A telemetry subscription waiting to be started.
pub(crate) struct Telemetry {
    pub(crate) config: TelemetryConfig,
    pub(crate) handler: TelemetryFn,
}

/// Where the listener binds: the sandbox's address in Lambda, loopback locally.
async fn listener_ip() -> IpAddr {
    let lookup = tokio::net::lookup_host((SANDBOX_HOST, 0));
    match tokio::time::timeout(LOOKUP_LIMIT, lookup).await {
        Ok(Ok(mut addrs)) => addrs
            .next()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip()),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// What the listener has received and handled, so SHUTDOWN can wait for the last
/// deliveries: Lambda keeps delivering during the shutdown phase (the runtime's and the
/// extensions' last lines, the last platform events).
#[derive(Debug)]
pub(crate) struct Drain {
    /// Batches received and not yet handled.
    pending: AtomicUsize,
    /// When the last batch arrived.
    last_batch: Mutex<Instant>,
}

/// How long the listener must have been quiet, with every batch handled, before the
/// deliveries count as over.
const DRAIN_QUIET: Duration = Duration::from_millis(500);
/// The largest delivery the listener takes. Lambda's batches can exceed the subscription's
/// `maxBytes` (at most 1 MiB), by about twice (edge-cases C4); anything far larger is not
/// a batch, and is refused rather than held in the function's memory.
const MAX_DELIVERY: usize = 8 * 1024 * 1024;
/// How often a drain looks.
const DRAIN_POLL: Duration = Duration::from_millis(20);

impl Drain {
    fn new() -> Self {
        Drain {
            pending: AtomicUsize::new(0),
            last_batch: Mutex::new(Instant::now()),
        }
    }

    fn received(&self) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        *self.last_batch.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    fn handled(&self) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
    }

    /// Waits until the deliveries are over (nothing new for [`DRAIN_QUIET`] since the wait
    /// began or the last batch came, and every batch handled), or until `limit` has passed.
    /// The quiet spell counts from the start of the wait too: the platform's last
    /// deliveries may still be on their way when SHUTDOWN arrives.
    pub(crate) async fn wait(&self, limit: Duration) {
        let began = Instant::now();
        let give_up = began + limit;
        loop {
            let last = *self.last_batch.lock().unwrap_or_else(|p| p.into_inner());
            let quiet = last.max(began).elapsed() >= DRAIN_QUIET;
            if (quiet && self.pending.load(Ordering::SeqCst) == 0) || Instant::now() >= give_up {
                return;
            }
            tokio::time::sleep(DRAIN_POLL.min(give_up.saturating_duration_since(Instant::now())))
                .await;
        }
    }
}

impl Telemetry {
    /// Checks the configuration, binds the listener once, and subscribes, falling back
    /// through older schema versions when the platform refuses a newer one. The returned
    /// [`Drain`] tells when the deliveries are over.
    pub(crate) async fn start(
        self,
        client: &mut Client,
        api: &ExtensionApi,
        id: &ExtensionId,
    ) -> Result<Arc<Drain>, Error> {
        let invalid = |m: String| Error::new("Extension.InvalidTelemetryConfig", m);
        self.config.buffering.validate().map_err(invalid)?;
        if self.config.types.is_empty() {
            return Err(invalid("subscribe to at least one telemetry type".into()));
        }
        let ip = listener_ip().await;
        let listener = TcpListener::bind(SocketAddr::new(ip, self.config.port))
            .await
            .map_err(|e| Error::from(e).with_error_type("Extension.TelemetryListenerFailed"))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::from(e).with_error_type("Extension.TelemetryListenerFailed"))?
            .port();
        let drain = Arc::new(Drain::new());
        tokio::spawn(serve(listener, self.handler, drain.clone()));

        let mut target = Target {
            client,
            api,
            id,
            port,
            config: &self.config,
        };
        if !self.config.logs_api {
            match target
                .subscribe(SubscriptionApi::Telemetry, &TELEMETRY_SCHEMA_VERSIONS)
                .await
            {
                Outcome::Subscribed => return Ok(drain),
                Outcome::Failed(e) => return Err(e),
                // An older platform: the Logs API is all there is.
                Outcome::NoSuchApi => {
                    tracing::debug!("no Telemetry API; subscribing through the Logs API")
                }
            }
        }
        let newest_first: Vec<&str> = LOGS_SCHEMA_VERSIONS.iter().rev().copied().collect();
        match target.subscribe(SubscriptionApi::Logs, &newest_first).await {
            Outcome::Subscribed => Ok(drain),
            Outcome::Failed(e) => Err(e),
            Outcome::NoSuchApi => Err(Error::new(
                "Extension.TelemetrySubscriptionFailed",
                "the platform has neither a Telemetry API nor a Logs API",
            )),
        }
    }
}

enum Outcome {
    Subscribed,
    NoSuchApi,
    Failed(Error),
}

struct Target<'a> {
    client: &'a mut Client,
    api: &'a ExtensionApi,
    id: &'a ExtensionId,
    port: u16,
    config: &'a TelemetryConfig,
}

impl Target<'_> {
    /// Tries each schema version in turn until one is accepted.
    async fn subscribe(&mut self, which: SubscriptionApi, versions: &[&str]) -> Outcome {
        let mut first_refusal = None;
        for version in versions {
            let subscription = TelemetrySubscription {
                schema_version: (*version).to_owned(),
                types: self.config.types.clone(),
                buffering: self.config.buffering,
                destination: Destination::Http {
                    uri: format!("http://{SANDBOX_HOST}:{}/", self.port),
                },
            };
            let request = match which {
                SubscriptionApi::Telemetry => self.api.subscribe_telemetry(self.id, &subscription),
                SubscriptionApi::Logs => self.api.subscribe_logs(self.id, &subscription),
            };
            match self.client.send(request).await {
                Ok(reply) if reply.status == StatusCode::ACCEPTED => {
                    // RIE answers 202 "…NotSupported": accepted, but nothing will come.
                    tracing::warn!(
                        "the platform accepted the subscription but does not deliver telemetry"
                    );
                    return Outcome::Subscribed;
                }
                Ok(_) => {
                    tracing::debug!(api = ?which, schema = version, "subscribed");
                    return Outcome::Subscribed;
                }
                // A refused body: perhaps the schema version is too new; try an older one.
                Err(e @ ApiError::BadRequest(_)) => {
                    first_refusal.get_or_insert(e);
                }
                Err(ApiError::NotFound(_)) => return Outcome::NoSuchApi,
                Err(e) => {
                    return Outcome::Failed(
                        Error::from(e).with_error_type("Extension.TelemetrySubscriptionFailed"),
                    );
                }
            }
        }
        let e = first_refusal.map_or_else(
            || Error::new("Extension.TelemetrySubscriptionFailed", "refused"),
            Error::from,
        );
        Outcome::Failed(e.with_error_type("Extension.TelemetrySubscriptionFailed"))
    }
}

/// The pause after a failed `accept` before trying again.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Accepts deliveries for as long as the process lives. Each batch is answered at once
/// (edge-cases C4) and handed, in order, to the handler on its own task.
async fn serve(listener: TcpListener, handler: TelemetryFn, drain: Arc<Drain>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<TelemetryEvent>>();
    let handled = drain.clone();
    tokio::spawn(async move {
        while let Some(batch) = rx.recv().await {
            handler(batch).await;
            handled.handled();
        }
    });
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors (EMFILE) repeats until one frees up: wait for that
                // instead of spinning a core in the function's sandbox.
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let tx = tx.clone();
        let drain = drain.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let tx = tx.clone();
                let drain = drain.clone();
                async move { Ok::<_, Infallible>(receive(req, &tx, &drain).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn receive(
    req: Request<Incoming>,
    tx: &mpsc::UnboundedSender<Vec<TelemetryEvent>>,
    drain: &Drain,
) -> Response<Full<Bytes>> {
    let too_large = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_DELIVERY);
    if too_large {
        return status_only(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let status = match Limited::new(req.into_body(), MAX_DELIVERY).collect().await {
        Ok(body) => match parse_batch(&body.to_bytes()) {
            Some(batch) => {
                drain.received();
                if tx.send(batch).is_err() {
                    drain.handled();
                }
                StatusCode::OK
            }
            None => StatusCode::BAD_REQUEST,
        },
        Err(e) if e.is::<http_body_util::LengthLimitError>() => StatusCode::PAYLOAD_TOO_LARGE,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    status_only(status)
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = status;
    reply
}

/// A batch is a JSON array of events; an entry that is not an event is kept as an
/// `Other`-kind event rather than failing the whole batch.
pub(crate) fn parse_batch(body: &[u8]) -> Option<Vec<TelemetryEvent>> {
    let items: Vec<serde_json::Value> = serde_json::from_slice(body).ok()?;
    Some(
        items
            .into_iter()
            .map(|item| {
                serde_json::from_value(item.clone()).unwrap_or_else(|_| TelemetryEvent {
                    time: String::new(),
                    kind: "unknown".into(),
                    record: item,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_odd_entries() {
        let batch =
            parse_batch(br#"[{"time":"t","type":"function","record":"hi"},42,{"type":"x"}]"#)
                .unwrap();
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[0].kind, "function");
        assert_eq!(batch[1].kind, "unknown");
        assert_eq!(batch[1].record, serde_json::json!(42));
        assert!(parse_batch(b"{}").is_none());
    }

    proptest::proptest! {
        /// A delivery of any bytes is a batch or a 400, never a panic; every entry of an
        /// array is kept.
        #[test]
        fn batches_of_any_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Some(batch) = parse_batch(&bytes) {
                let items: Vec<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
                proptest::prop_assert_eq!(batch.len(), items.len());
                for event in &batch {
                    let _ = event.parse();
                }
            }
        }
    }
}
