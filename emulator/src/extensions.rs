//! The extensions of one environment: the external ones launched from the extensions
//! directory, and every registration (external or internal) with its event queue
//! (protocol.md §2, §4).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use ironlambda_api_client::EventType;

use crate::calls::{PostedBody, Refusal, Reply, refuse};

/// At most this many extensions may register (protocol.md §2.1).
pub(crate) const MAX_EXTENSIONS: usize = 10;

/// A registered extension.
pub(crate) struct Registered {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) internal: bool,
    pub(crate) invoke: bool,
    pub(crate) shutdown: bool,
    /// Its pending `/event/next`, if it is waiting.
    waiting: Option<Reply<Bytes>>,
    queued: VecDeque<Bytes>,
    /// It called `/event/next` with nothing left to deliver: done with the current phase.
    pub(crate) done: bool,
    /// It reported `init/error` or `exit/error`, or its environment shut down; later calls
    /// are refused.
    pub(crate) failed: bool,
}

/// An external extension launched from the extensions directory (its process is the
/// driver's; this is what the lifecycle knows of it).
pub(crate) struct External {
    pub(crate) name: Arc<str>,
    /// Its process has not exited yet.
    pub(crate) alive: bool,
    pub(crate) registered: bool,
}

/// An event for an extension waiting in `/event/next`: where it goes, and what.
pub(crate) type Delivery = (Reply<Bytes>, Bytes);

/// Where registration stands in the init phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// Init is running and the runtime has not called `/next` yet.
    Open,
    /// Init is over (or never started).
    Closed,
}

/// The extensions of the current environment.
#[derive(Default)]
pub(crate) struct Extensions {
    pub(crate) registered: Vec<Registered>,
    pub(crate) external: Vec<External>,
}

/// The files Lambda would launch from `dir`: every entry that is not a directory, in
/// lexical order (a symlink to a directory is not skipped, as in Lambda; edge-cases B16).
pub(crate) fn discover(dir: &Path) -> std::io::Result<Vec<(Arc<str>, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            continue;
        }
        let name: Arc<str> = entry.file_name().to_string_lossy().into();
        found.push((name, entry.path()));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

impl Extensions {
    /// True when every launched external extension has registered.
    pub(crate) fn externals_registered(&self) -> bool {
        self.external.iter().all(|e| e.registered)
    }

    /// True when any external extension is registered or still running.
    pub(crate) fn has_external(&self) -> bool {
        self.registered.iter().any(|r| !r.internal) || self.external.iter().any(|e| e.alive)
    }

    /// True when an internal extension is registered.
    pub(crate) fn has_internal(&self) -> bool {
        self.registered.iter().any(|r| r.internal)
    }

    /// True when no external extension process is left.
    pub(crate) fn externals_exited(&self) -> bool {
        self.external.iter().all(|e| !e.alive)
    }

    /// True when every registered extension has called `/event/next` and waits.
    pub(crate) fn all_done(&self) -> bool {
        self.registered.iter().all(|r| r.done)
    }

    /// True when every INVOKE subscriber is done with the current invocation (the barrier).
    pub(crate) fn invoke_subscribers_done(&self) -> bool {
        self.registered.iter().filter(|r| r.invoke).all(|r| r.done)
    }

    /// Registers `name` with the events in `body` (edge-cases B1–B6).
    pub(crate) fn register(
        &mut self,
        name: &str,
        body: &PostedBody,
        window: Window,
    ) -> Result<&Registered, Refusal> {
        let forbidden = |t: &str, m: &str| refuse(StatusCode::FORBIDDEN, t, m);
        if name.is_empty() {
            return Err(forbidden(
                "Extension.InvalidExtensionName",
                "Empty extension name",
            ));
        }
        let external = self.external.iter().position(|e| &*e.name == name);
        let internal = external.is_none();
        if window == Window::Closed {
            return Err(if internal {
                forbidden(
                    "Extension.RegistrationClosed",
                    "Extension registration is closed: init has finished",
                )
            } else {
                forbidden(
                    "Extension.InvalidExtensionState",
                    "Extension registration is closed: init has finished",
                )
            });
        }
        let events = parse_events(body)?;
        if internal && events.contains(&EventType::Shutdown) {
            return Err(forbidden(
                "Extension.InvalidEventType",
                "ShutdownEventNotSupportedForInternalExtension: internal extensions cannot receive SHUTDOWN",
            ));
        }
        if self.registered.iter().any(|r| r.name == name) {
            return Err(forbidden(
                "Extension.InvalidExtensionState",
                "An extension with this name is already registered",
            ));
        }
        if self.registered.len() >= MAX_EXTENSIONS {
            return Err(forbidden(
                "Extension.TooManyExtensions",
                "Extension limit (10) reached",
            ));
        }
        if let Some(i) = external {
            self.external[i].registered = true;
        }
        self.registered.push(Registered {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            internal,
            invoke: events.contains(&EventType::Invoke),
            shutdown: events.contains(&EventType::Shutdown),
            waiting: None,
            queued: VecDeque::new(),
            done: false,
            failed: false,
        });
        Ok(self.registered.last().expect("just pushed"))
    }

    /// The registration with `id`, if it may still call the API.
    pub(crate) fn find(&mut self, id: &str) -> Result<&mut Registered, Refusal> {
        let r = self
            .registered
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| {
                refuse(
                    StatusCode::FORBIDDEN,
                    "Extension.UnknownExtensionIdentifier",
                    "Unknown extension identifier",
                )
            })?;
        if r.failed {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "Extension.InvalidExtensionState",
                "The extension reported an error, or its environment shut down: it must exit",
            ));
        }
        Ok(r)
    }

    /// Queues `event` for every registration that `wants` it; returns the deliveries due at
    /// once, to those waiting.
    pub(crate) fn broadcast(
        &mut self,
        event: &Bytes,
        wants: impl Fn(&Registered) -> bool,
    ) -> Vec<Delivery> {
        self.registered
            .iter_mut()
            .filter(|r| wants(r))
            .filter_map(|r| r.send(event.clone()))
            .collect()
    }

    /// The environment is down: its extension processes are gone, and a registration that
    /// calls again (a process that outlived it, or a test playing one) is told it is in
    /// the wrong state until the next init starts afresh.
    pub(crate) fn retire(&mut self) {
        self.external.clear();
        for r in &mut self.registered {
            r.failed = true;
            r.waiting = None;
            r.queued.clear();
        }
    }

    /// The launch-order indices of the external processes still running.
    pub(crate) fn running_externals(&self) -> Vec<usize> {
        (0..self.external.len())
            .filter(|&i| self.external[i].alive)
            .collect()
    }

    /// The running external processes that are not registered for SHUTDOWN.
    pub(crate) fn running_externals_without_shutdown(&self) -> Vec<usize> {
        self.running_externals()
            .into_iter()
            .filter(|&i| {
                let name = &self.external[i].name;
                !self
                    .registered
                    .iter()
                    .any(|r| r.name == **name && r.shutdown)
            })
            .collect()
    }
}

impl Registered {
    /// Queues an event; returns its delivery when the extension is waiting.
    pub(crate) fn send(&mut self, event: Bytes) -> Option<Delivery> {
        self.done = false;
        self.queued.push_back(event);
        self.flush()
    }

    /// `/event/next`: the next queued event at once, or wait for one.
    pub(crate) fn next(&mut self, reply: Reply<Bytes>) -> Option<Delivery> {
        self.waiting = Some(reply);
        if self.queued.is_empty() {
            self.done = true;
        }
        self.flush()
    }

    /// The front event for the waiting call. A call whose connection is gone keeps the
    /// event queued for the extension's next call.
    fn flush(&mut self) -> Option<Delivery> {
        let waiting = self.waiting.take_if(|w| !w.is_closed())?;
        match self.queued.pop_front() {
            Some(event) => Some((waiting, event)),
            None => {
                self.waiting = Some(waiting);
                None
            }
        }
    }
}

/// The events a registration asks for. Lambda accepts what real clients send: no
/// `events` (`{}`), `"events": null` (aws-lambda-go's SIGTERM helper) and fields it does
/// not know; it refuses a body that is not a JSON object, and event names it does not know.
pub(crate) fn parse_events(body: &PostedBody) -> Result<Vec<EventType>, Refusal> {
    let bad = |m: String| refuse(StatusCode::FORBIDDEN, "InvalidRequestFormat", m);
    let PostedBody::Complete(bytes) = body else {
        return Err(bad("The registration body could not be read".into()));
    };
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("Invalid registration body: {e}")))?;
    let names: Vec<String> = match object.get("events") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(events) => serde_json::from_value(events.clone())
            .map_err(|e| bad(format!("Invalid registration body: events: {e}")))?,
    };
    names
        .iter()
        .map(|name| {
            EventType::from_name(name).ok_or_else(|| {
                refuse(
                    StatusCode::FORBIDDEN,
                    "Extension.InvalidEventType",
                    format!("Unknown event type {name:?}"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> PostedBody {
        PostedBody::Complete(Bytes::from(json.to_owned()))
    }

    fn with_external(name: &str) -> Extensions {
        let mut e = Extensions::default();
        e.external.push(External {
            name: name.into(),
            alive: true,
            registered: false,
        });
        e
    }

    fn error_type(r: Result<&Registered, Refusal>) -> String {
        r.err().map(|(_, b)| b.error_type).unwrap_or_default()
    }

    #[test]
    fn registration_rules() {
        let mut e = with_external("ext");
        let ok = body(r#"{"events":["INVOKE","SHUTDOWN"]}"#);
        assert_eq!(
            error_type(e.register("", &ok, Window::Open)),
            "Extension.InvalidExtensionName"
        );
        for refused in ["nope", "[]", r#"{"events":"INVOKE"}"#] {
            assert_eq!(
                error_type(e.register("ext", &body(refused), Window::Open)),
                "InvalidRequestFormat",
                "{refused}"
            );
        }
        assert_eq!(
            error_type(e.register("ext", &body(r#"{"events":["BOOT"]}"#), Window::Open)),
            "Extension.InvalidEventType"
        );
        assert_eq!(
            error_type(e.register("internal", &ok, Window::Open)),
            "Extension.InvalidEventType"
        );
        let r = e.register("ext", &ok, Window::Open).unwrap();
        assert!(!r.internal && r.invoke && r.shutdown);
        assert!(e.externals_registered());
        assert_eq!(
            error_type(e.register("ext", &ok, Window::Open)),
            "Extension.InvalidExtensionState"
        );
        let invoke_only = body(r#"{"events":["INVOKE"]}"#);
        assert!(
            e.register("in-process", &invoke_only, Window::Open)
                .unwrap()
                .internal
        );
        assert_eq!(
            error_type(e.register("late", &invoke_only, Window::Closed)),
            "Extension.RegistrationClosed"
        );
        for i in 0..8 {
            e.register(
                &format!("more-{i}"),
                &body(r#"{"events":[]}"#),
                Window::Open,
            )
            .unwrap();
        }
        assert_eq!(
            error_type(e.register("eleventh", &invoke_only, Window::Open)),
            "Extension.TooManyExtensions"
        );
    }

    /// What real clients send is accepted: no events at all, `null` events, unknown fields.
    #[test]
    fn registrations_real_clients_send_are_accepted() {
        for accepted in [
            "{}",
            r#"{"events":null}"#,
            r#"{"events":["INVOKE"],"configurationKeys":[]}"#,
        ] {
            let mut e = with_external("ext");
            let r = e.register("ext", &body(accepted), Window::Open);
            assert!(r.is_ok(), "{accepted}: {:?}", r.err().map(|(_, b)| b));
        }
    }

    #[tokio::test]
    async fn events_queue_until_the_extension_asks() {
        let mut e = with_external("ext");
        e.register("ext", &body(r#"{"events":["INVOKE"]}"#), Window::Open)
            .unwrap();
        let r = &mut e.registered[0];
        assert!(
            r.send(Bytes::from_static(b"one")).is_none(),
            "nobody waits yet"
        );
        assert!(!r.done);
        let (tx, _rx) = tokio::sync::oneshot::channel();
        let (_, event) = r.next(tx).expect("the queued event goes at once");
        assert_eq!(event, "one");
        assert!(!r.done, "receiving an event is not being done with it");
        let (tx, _rx) = tokio::sync::oneshot::channel();
        assert!(r.next(tx).is_none());
        assert!(r.done);
        let (_, event) = r
            .send(Bytes::from_static(b"two"))
            .expect("the waiting call gets it");
        assert_eq!(event, "two");
    }

    /// An extension whose `/event/next` connection went away gets the event on its next
    /// call instead of losing it.
    #[test]
    fn an_event_for_a_call_that_went_away_waits_for_the_next_call() {
        let mut e = with_external("ext");
        e.register("ext", &body(r#"{"events":["INVOKE"]}"#), Window::Open)
            .unwrap();
        let r = &mut e.registered[0];
        let (tx, rx) = tokio::sync::oneshot::channel();
        assert!(r.next(tx).is_none());
        drop(rx);
        assert!(r.send(Bytes::from_static(b"kept")).is_none());
        let (tx, _rx) = tokio::sync::oneshot::channel();
        assert_eq!(r.next(tx).map(|(_, e)| e).as_deref(), Some(&b"kept"[..]));
    }
}
