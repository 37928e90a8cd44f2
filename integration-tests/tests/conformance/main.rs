//! The conformance suite: one test per row of `shared/protocol/edge-cases.md` that applies
//! to ironlambda, named after its row (`a5_…` for row A5). Client-side rows check what our
//! runtime and extension crates do against a scripted server; emulator-side rows check what
//! the emulator answers. Rows with both sides have a test for each.
//!
//! Every row of §A–§D has a test. Some rows have one side only: A1–A3, A5–A10, A21, A26
//! and A27 are rules for clients (the emulator never answers so; the fault mode in
//! `faults.rs` makes it); A16, A23–A25 and A28 are rules for emulators. A18 has both: the
//! emulator's side is its Function URL front door reading the prelude. Not covered on the
//! emulator side: A21's X-Ray cause header (the emulator has no X-Ray to forward it to,
//! and ignores it).

mod client;
mod extensions;
mod invoke_api;
mod runtime_api;
mod telemetry;

use bytes::Bytes;
use http::StatusCode;
use ironlambda_api_client::{
    ApiError, ApiResponse, Client, Endpoint, EventType, ExtensionApi, ExtensionId, NextHeaders,
    RuntimeApi,
};
use ironlambda_emulator::{Emulator, InvokeResponse};
use ironlambda_integration_tests::invoke_in_background;

/// An invocation in flight: its request id, and its caller waiting for the answer.
pub type Invocation = (String, tokio::task::JoinHandle<InvokeResponse>);

/// The test playing extensions against an idle emulator still in init.
pub struct Extensions {
    pub endpoint: Endpoint,
    pub api: ExtensionApi,
}

impl Extensions {
    pub fn new(emu: &Emulator) -> Self {
        let endpoint = Endpoint::parse(&emu.addr().to_string()).unwrap();
        Extensions {
            api: ExtensionApi::new(endpoint.clone()),
            endpoint,
        }
    }

    pub async fn send(&self, req: http::Request<Bytes>) -> Result<ApiResponse, ApiError> {
        Client::new(&self.endpoint).send(req).await
    }

    pub async fn register(
        &self,
        name: &str,
        events: &[EventType],
    ) -> Result<ApiResponse, ApiError> {
        self.send(self.api.register(name, events, false).unwrap())
            .await
    }

    /// Registers `name` for INVOKE and returns its identifier.
    pub async fn registered(&self, name: &str) -> ExtensionId {
        self.registered_for(name, &[EventType::Invoke]).await
    }

    /// Registers `name` for `events` and returns its identifier.
    pub async fn registered_for(&self, name: &str, events: &[EventType]) -> ExtensionId {
        let r = self.register(name, events).await.unwrap();
        ExtensionId::new(r.header("lambda-extension-identifier").unwrap()).unwrap()
    }

    /// Ends init as Lambda does, when the runtime (played here) and extension `id` (which
    /// must not be subscribed to INVOKE) ask for their next event, with an invoke of `1`
    /// waiting. Returns the runtime, which holds the invocation, to be answered with
    /// [`Runtime::answer_and_release`].
    pub async fn end_init(&self, emu: &Emulator, id: ExtensionId) -> (Runtime, Invocation) {
        let mut rt = Runtime::new(emu);
        let (api, endpoint) = (self.api.clone(), self.endpoint.clone());
        tokio::spawn(async move { Client::new(&endpoint).send(api.next(&id)).await });
        let call = invoke_in_background(emu, "1");
        let (headers, _) = rt.next().await;
        (rt, (headers.request_id, call))
    }

    /// A registration of `name` whose body is `body`.
    pub async fn register_body(
        &self,
        name: &str,
        body: &'static str,
    ) -> Result<ApiResponse, ApiError> {
        let mut req = self.api.register(name, &[], false).unwrap();
        *req.body_mut() = Bytes::from_static(body.as_bytes());
        self.send(req).await
    }
}

/// The refusal's status and errorType.
pub fn refusal(e: ApiError) -> (Option<StatusCode>, String) {
    let error_type = e.body().map(|b| b.error_type.clone()).unwrap_or_default();
    (e.status(), error_type)
}

pub fn forbidden(error_type: &str) -> (Option<StatusCode>, String) {
    (Some(StatusCode::FORBIDDEN), error_type.to_owned())
}

/// The test playing the runtime.
pub struct Runtime {
    pub api: RuntimeApi,
    pub client: Client,
}

impl Runtime {
    pub fn new(emu: &Emulator) -> Self {
        let endpoint = Endpoint::parse(&emu.addr().to_string()).unwrap();
        Runtime {
            api: RuntimeApi::new(endpoint.clone()),
            client: Client::new(&endpoint),
        }
    }

    /// Asks for the next event in the background and shuts `emu` down: the last
    /// invocation is over only once the runtime polls again, and an emulator stops only
    /// between invocations.
    pub async fn release(self, emu: Emulator) {
        let Runtime { api, mut client } = self;
        let poll = tokio::spawn(async move { client.send(api.next()).await });
        emu.shutdown().await;
        poll.abort();
    }

    /// Answers `invocation` with `2`, checks its caller got that, and releases `emu`.
    pub async fn answer_and_release(mut self, emu: Emulator, invocation: Invocation) {
        let (id, call) = invocation;
        self.respond(&id, "2").await.unwrap();
        assert_eq!(call.await.unwrap().body, "2");
        self.release(emu).await;
    }

    pub async fn next(&mut self) -> (NextHeaders, Bytes) {
        let r = self.client.send(self.api.next()).await.unwrap();
        (NextHeaders::from_response(&r), r.body)
    }

    pub async fn respond(&mut self, id: &str, body: impl Into<Bytes>) -> Result<Bytes, ApiError> {
        let req = self
            .api
            .response(id, body.into(), "application/json")
            .unwrap();
        self.client.send(req).await.map(|r| r.body)
    }

    pub async fn fail(
        &mut self,
        id: &str,
        error_type: &str,
        body: &'static [u8],
    ) -> Result<(), ApiError> {
        let req = self
            .api
            .error(id, error_type, Bytes::from_static(body))
            .unwrap();
        self.client.send(req).await.map(drop)
    }
}
