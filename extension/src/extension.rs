//! [`Extension`]: register, then serve INVOKE and SHUTDOWN events until shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ironlambda_api_client::panic::{CatchUnwind, panic_message};
use ironlambda_api_client::{
    ApiError, Client, Endpoint, Error, EventType, ExtensionApi, ExtensionEvent, ExtensionId,
    InvokeEvent, POLL_ATTEMPTS, RegisterResponse, ShutdownEvent, extension_headers,
};

use crate::telemetry::{Drain, Telemetry, TelemetryConfig};

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type InvokeFn = Box<dyn Fn(InvokeEvent) -> BoxFuture<Result<(), Error>> + Send + Sync>;
type ShutdownFn = Box<dyn FnOnce(ShutdownEvent) -> BoxFuture<Result<(), Error>> + Send>;

/// A Lambda extension: what to do on INVOKE and SHUTDOWN, and optionally with telemetry.
///
/// An external extension (a binary a layer installs as `/opt/extensions/<name>`):
///
/// ```no_run
/// use ironlambda_extension::{Error, Extension};
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Error> {
///     Extension::new()
///         .on_invoke(|event| async move {
///             println!("invocation {} started", event.request_id);
///             Ok(())
///         })
///         .on_shutdown(|event| async move {
///             println!("shutting down: {}", event.shutdown_reason);
///             Ok(())
///         })
///         .run()
///         .await
/// }
/// ```
///
/// An internal extension runs inside the function process: register it with
/// [`Extension::spawn_internal`] before the runtime loop starts.
#[derive(Default)]
pub struct Extension {
    name: Option<String>,
    on_invoke: Option<InvokeFn>,
    on_shutdown: Option<ShutdownFn>,
    telemetry: Option<Telemetry>,
}

/// Why an extension's hook failed, as the error type sent to `exit/error`: the error's own
/// type when it is already `Category.Reason`, else `Extension.<Type>`.
fn category_reason(error: &Error) -> String {
    let t = error.error_type();
    if t.contains('.') {
        t.to_owned()
    } else {
        format!("Extension.{t}")
    }
}

impl Extension {
    /// An extension with no hooks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registration name. External extensions must register under their file name,
    /// which is the default; internal ones need a name that is not a file in
    /// `/opt/extensions`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Runs `hook` for every INVOKE event. The next invocation waits until it returns.
    pub fn on_invoke<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(InvokeEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.on_invoke = Some(Box::new(move |e| Box::pin(hook(e))));
        self
    }

    /// Runs `hook` once, on the SHUTDOWN event (external extensions only); it should
    /// finish before `event.deadline_ms`.
    pub fn on_shutdown<F, Fut>(mut self, hook: F) -> Self
    where
        F: FnOnce(ShutdownEvent) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.on_shutdown = Some(Box::new(move |e| Box::pin(hook(e))));
        self
    }

    /// Subscribes to the Telemetry API and hands every delivered batch to `handler`.
    pub fn with_telemetry<F, Fut>(mut self, config: TelemetryConfig, handler: F) -> Self
    where
        F: Fn(Vec<ironlambda_api_client::telemetry::TelemetryEvent>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.telemetry = Some(Telemetry {
            config,
            handler: Arc::new(move |batch| Box::pin(handler(batch))),
        });
        self
    }

    /// The events to register for. An external extension that receives telemetry also
    /// takes SHUTDOWN, even without a hook: Lambda SIGKILLs extensions that did not, as
    /// soon as the runtime is gone, and the last deliveries would be lost.
    fn events(&self, internal: bool) -> Vec<EventType> {
        let mut events = Vec::new();
        if self.on_invoke.is_some() {
            events.push(EventType::Invoke);
        }
        if self.on_shutdown.is_some() || (self.telemetry.is_some() && !internal) {
            events.push(EventType::Shutdown);
        }
        events
    }

    /// Registers, subscribes to telemetry if asked, then serves events until SHUTDOWN.
    /// Returns `Ok` after the shutdown hook ran; on `Err` the process should exit non-zero.
    pub async fn run(self) -> Result<(), Error> {
        self.register(false).await?.serve().await
    }

    /// Registers as an internal extension from inside the function process and serves its
    /// events on a spawned task. Call it before the runtime loop starts: registration
    /// closes when the runtime first asks for an event. Internal extensions cannot receive
    /// SHUTDOWN; use [`crate::GracefulShutdown`] for cleanup.
    pub async fn spawn_internal(self) -> Result<tokio::task::JoinHandle<Result<(), Error>>, Error> {
        if self.on_shutdown.is_some() {
            return Err(Error::new(
                "Extension.InvalidEventType",
                "internal extensions cannot receive SHUTDOWN; use GracefulShutdown instead",
            ));
        }
        let registered = self.register(true).await?;
        Ok(tokio::spawn(registered.serve()))
    }

    async fn register(mut self, internal: bool) -> Result<Registered, Error> {
        let endpoint = Endpoint::from_env()
            .map_err(|e| Error::from(e).with_error_type("Extension.InvalidEndpoint"))?;
        let api = ExtensionApi::new(endpoint.clone());
        let mut client = Client::new(&endpoint);
        let name = match self.name.take() {
            Some(n) => n,
            None => {
                let exe = crate::default_extension_name().unwrap_or_else(|| "extension".to_owned());
                if internal {
                    format!("{exe}-internal")
                } else {
                    exe
                }
            }
        };
        let events = self.events(internal);
        let request = api
            .register(&name, &events, false)
            .map_err(|e| Error::from(e).with_error_type("Extension.InvalidName"))?;
        let reply = client.send(request).await.map_err(|e| match e {
            // edge-cases B15: a layer turned extensions off; the API is not there.
            ApiError::NotFound(_) => Error::new(
                EXTENSIONS_DISABLED,
                "the Extensions API is not available: extensions are disabled in this environment",
            ),
            e => Error::from(e).with_error_type("Extension.RegistrationFailed"),
        })?;
        let id = reply
            .header(extension_headers::IDENTIFIER)
            .and_then(|v| ExtensionId::new(v).ok())
            .ok_or_else(|| {
                Error::new(
                    "Extension.RegistrationFailed",
                    "the registration reply had no usable extension identifier",
                )
            })?;
        let function = serde_json::from_slice::<RegisterResponse>(&reply.body).ok();
        tracing::debug!(extension = %name, ?events, function = ?function.as_ref().map(|f| &f.function_name), "registered");
        let mut registered = Registered {
            api,
            client,
            id,
            on_invoke: self.on_invoke,
            on_shutdown: self.on_shutdown,
            telemetry: None,
        };
        if let Some(telemetry) = self.telemetry {
            match telemetry
                .start(&mut registered.client, &registered.api, &registered.id)
                .await
            {
                Ok(drain) => registered.telemetry = Some(drain),
                Err(e) => return Err(registered.report(ErrorPhase::Init, e).await),
            }
        }
        Ok(registered)
    }
}

#[derive(Clone, Copy)]
enum ErrorPhase {
    Init,
    Exit,
}

/// A registered extension, ready to serve events.
struct Registered {
    api: ExtensionApi,
    client: Client,
    id: ExtensionId,
    on_invoke: Option<InvokeFn>,
    on_shutdown: Option<ShutdownFn>,
    /// The telemetry listener's deliveries, drained at SHUTDOWN.
    telemetry: Option<Arc<Drain>>,
}

impl Registered {
    /// Reports `error` to `init/error` or `exit/error` and hands it back.
    async fn report(&mut self, phase: ErrorPhase, error: Error) -> Error {
        let error_type = category_reason(&error);
        let body = Bytes::from(serde_json::to_vec(&error.to_error_request()).unwrap_or_default());
        let request = match phase {
            ErrorPhase::Init => self.api.init_error(&self.id, &error_type, body),
            ErrorPhase::Exit => self.api.exit_error(&self.id, &error_type, body),
        };
        if let Err(e) = self.client.send(request).await {
            tracing::error!("could not report the extension failure: {e}");
        }
        tracing::error!(errorType = %error_type, "extension failed: {}", error.message());
        error.with_error_type(error_type)
    }

    async fn serve(mut self) -> Result<(), Error> {
        loop {
            let (api, id) = (&self.api, &self.id);
            let next = self.client.poll(
                || api.next(id),
                |attempt, e| tracing::warn!("waiting for the next extension event failed (attempt {attempt} of {POLL_ATTEMPTS}): {e}"),
            );
            let reply = next
                .await
                .map_err(|e| Error::from(e).with_error_type("Extension.ApiError"))?;
            let event: ExtensionEvent = match serde_json::from_slice(&reply.body) {
                Ok(e) => e,
                Err(e) => {
                    let error =
                        Error::new("Extension.InvalidEvent", format!("unreadable event: {e}"));
                    return Err(self.report(ErrorPhase::Exit, error).await);
                }
            };
            match event {
                ExtensionEvent::Invoke(invoke) => {
                    let Some(hook) = &self.on_invoke else {
                        continue;
                    };
                    if let Err(e) = run_hook(hook(invoke)).await {
                        return Err(self.report(ErrorPhase::Exit, e).await);
                    }
                }
                ExtensionEvent::Shutdown(shutdown) => {
                    let deadline = shutdown.deadline_ms;
                    let hooked = match self.on_shutdown.take() {
                        None => Ok(()),
                        Some(hook) => {
                            let left = until(deadline);
                            match tokio::time::timeout(left, run_hook(hook(shutdown))).await {
                                Ok(Ok(())) => Ok(()),
                                Ok(Err(e)) => Err(self.report(ErrorPhase::Exit, e).await),
                                Err(_) => Err(Error::new(
                                    "Extension.ShutdownTimeout",
                                    "the shutdown hook ran past the deadline",
                                )),
                            }
                        }
                    };
                    // Then the last deliveries, while the budget lasts (a little is kept
                    // for exiting before Lambda's SIGKILL).
                    if let Some(drain) = &self.telemetry {
                        drain
                            .wait(until(deadline).saturating_sub(EXIT_MARGIN))
                            .await;
                    }
                    return hooked;
                }
            }
        }
    }
}

/// The error type of a registration refused because extensions are disabled (the
/// Extensions API answered 404).
pub const EXTENSIONS_DISABLED: &str = "Extension.Disabled";

/// What an extension keeps of the shutdown budget for exiting.
const EXIT_MARGIN: Duration = Duration::from_millis(100);

/// Runs a hook, turning a panic into an `Extension.Panic` error.
async fn run_hook(hook: BoxFuture<Result<(), Error>>) -> Result<(), Error> {
    match CatchUnwind(hook).await {
        Ok(result) => result,
        Err(payload) => Err(Error::new("Extension.Panic", panic_message(&*payload))),
    }
}

/// Time until `deadline_ms` (epoch ms); a missing (0) deadline leaves 2 s, Lambda's budget.
fn until(deadline_ms: u64) -> Duration {
    if deadline_ms == 0 {
        return Duration::from_secs(2);
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_get_a_category() {
        assert_eq!(
            category_reason(&Error::new("Extension.ConfigInvalid", "x")),
            "Extension.ConfigInvalid"
        );
        assert_eq!(
            category_reason(&Error::new("ParseIntError", "x")),
            "Extension.ParseIntError"
        );
    }

    #[tokio::test]
    async fn hook_panics_become_errors() {
        let e = run_hook(Box::pin(async { panic!("kaput") }))
            .await
            .unwrap_err();
        assert_eq!((e.error_type(), e.message()), ("Extension.Panic", "kaput"));
    }

    #[test]
    fn events_follow_the_hooks() {
        let e = Extension::new().on_invoke(|_| async { Ok(()) });
        assert_eq!(e.events(false), vec![EventType::Invoke]);
        let e = e.on_shutdown(|_| async { Ok(()) });
        assert_eq!(
            e.events(false),
            vec![EventType::Invoke, EventType::Shutdown]
        );
        assert!(Extension::new().events(false).is_empty());
    }

    #[test]
    fn a_telemetry_extension_takes_shutdown_to_drain_its_last_deliveries() {
        let e = Extension::new().with_telemetry(TelemetryConfig::default(), |_| async {});
        assert_eq!(e.events(false), vec![EventType::Shutdown]);
        // Internal extensions cannot take SHUTDOWN.
        assert!(e.events(true).is_empty());
    }
}
