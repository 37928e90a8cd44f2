//! The invocation loop: `/next` → handler → `/response` or `/error`, forever.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;
use ironlambda_api_client::{
    ApiError, ApiResponse, Client, EncodedRequest, NextHeaders, POLL_ATTEMPTS, POLL_BACKOFF,
    RuntimeApi, stream_error_trailers, validate_request_id,
};

use crate::config::Config;
use crate::context::Context;
use crate::handler::LocalHandler;
use crate::response::{ChunkStream, IntoResponse, Response, ResponseBody, ResponseBuffer};
use crate::xray::{self, TraceEnv};
use ironlambda_api_client::Error;
use ironlambda_api_client::panic::{CatchUnwind, panic_message};

/// Error type reported when an event does not deserialize into the handler's event type.
pub const INVALID_EVENT_ERROR_TYPE: &str = "Runtime.InvalidEvent";
/// Error type reported when the handler's output does not serialize.
pub const SERIALIZATION_ERROR_TYPE: &str = "Runtime.SerializationError";
/// Error type reported when the handler panicked (or a `Deserialize`/`Serialize` impl, or
/// a response stream).
pub const PANIC_ERROR_TYPE: &str = "Panic";

/// How many extra replies in a row `/next` tolerates before the runtime gives up.
const MAX_EXTRA_REPLIES: u32 = 3;

/// What one invocation produced.
enum Outcome {
    Response(Response),
    Failure(Error),
}

fn panicked(payload: &(dyn std::any::Any + Send)) -> Error {
    Error::new(PANIC_ERROR_TYPE, panic_message(payload))
}

pub(crate) struct InvocationLoop<H> {
    pub(crate) client: Client,
    pub(crate) api: RuntimeApi,
    /// Shared by every loop of the environment (one, or `AWS_LAMBDA_MAX_CONCURRENCY`).
    pub(crate) handler: Arc<H>,
    pub(crate) config: Arc<Config>,
    /// Keeps `_X_AMZN_TRACE_ID` in step with the invocation; `None` when several loops run,
    /// since one process variable cannot hold several invocations' traces.
    pub(crate) trace_env: Option<TraceEnv>,
    /// Responses are serialized here: into the connection's read buffer, lent while the
    /// response is built, or into memory of its own when that buffer still holds bytes.
    /// Each response leaves as a frozen view of that memory, which comes back once it is
    /// sent, so large responses do not cost a fresh allocation (and its page faults) every
    /// time.
    pub(crate) response_buf: ResponseBuffer,
    /// `/next`, framed once: it is sent after every invocation.
    pub(crate) next_request: EncodedRequest,
}

impl<H: LocalHandler> InvocationLoop<H> {
    /// Serves invocations until the Runtime API fails in a way that means the environment is
    /// gone (403 or persistent 5xx/transport errors on `/next`).
    ///
    /// Exactly one `/next` is queued or in flight at the top of the loop: each answer goes
    /// out in the same write as the following `/next` (see [`Self::report`]).
    pub(crate) async fn serve(mut self) -> Result<(), Error> {
        self.client.queue_encoded(&self.next_request);
        // Unusable events in a row: each waits longer before `/next` is asked again.
        let mut skipped = 0u32;
        loop {
            let next = self.next_event().await?;
            let headers = NextHeaders::from_response(&next);
            if let Err(e) = validate_request_id(&headers.request_id) {
                // edge-cases A5: without a usable id nothing can be answered; skip the event.
                // A server that keeps answering so (cargo-lambda's 204 when idle) must not
                // make the loop spin: back off, 50 ms doubling to at most 1.6 s.
                let pause = POLL_BACKOFF * 2u32.pow(skipped.min(5));
                skipped = skipped.saturating_add(1);
                tracing::error!(
                    "skipping an event whose {e} (status {}); asking again in {} ms",
                    next.status,
                    pause.as_millis()
                );
                tokio::time::sleep(pause).await;
                self.client.queue_encoded(&self.next_request);
                continue;
            }
            skipped = 0;
            let ctx = Context::from_next(headers, self.config.clone());
            if let Some(env) = &mut self.trace_env {
                env.update(ctx.xray_trace_id.as_deref());
            }
            let request_id = ctx.request_id.clone();
            // Pinned where it is made: a future moves by copying all of it, and the
            // wrappers would move the whole invocation (handler future included) twice.
            let invocation = std::pin::pin!(async {
                let outcome = self.invoke(next.into_body(), ctx).await;
                self.report(&request_id, outcome).await;
            });
            crate::logging::in_invocation(&request_id, invocation).await;
        }
    }

    /// The reply to the queued `/next`, retried with bounded exponential backoff on
    /// transport errors and 5xx.
    ///
    /// `/next` is answered 200 (or, by some emulators when idle, 204). A 202 is how the
    /// Runtime API answers a POST, so a 202 here is an extra reply to an earlier request
    /// from a broken server: the event is still to come on the same connection, and
    /// polling again instead would leave every later answer one reply behind.
    async fn next_event(&mut self) -> Result<ApiResponse, Error> {
        let mut extra = 0;
        loop {
            let api = &self.api;
            let next = self.client.poll_queued(
                || api.next(),
                |attempt, e| {
                    tracing::warn!(
                        "waiting for the next event failed (attempt {attempt} of {POLL_ATTEMPTS}): {e}"
                    )
                },
            );
            let reply = next.await.map_err(|e| {
                tracing::error!("cannot get the next event, stopping the runtime: {e}");
                Error::from(e).with_error_type("Runtime.ApiError")
            })?;
            if reply.status != http::StatusCode::ACCEPTED {
                return Ok(reply);
            }
            extra += 1;
            if extra > MAX_EXTRA_REPLIES {
                let message = format!(
                    "the Runtime API answered /next with 202 {extra} times in a row; it is not serving events"
                );
                tracing::error!("{message}, stopping the runtime");
                return Err(Error::new("Runtime.ApiError", message));
            }
            tracing::warn!(
                "the Runtime API sent an extra reply (202 Accepted) where the next event was expected; still waiting for the event"
            );
            self.client.owe_reply();
        }
    }

    async fn invoke(&mut self, body: Bytes, ctx: Context) -> Outcome {
        // A user's `Deserialize` or `Serialize` impl may panic too: that fails this
        // invocation, like a panic in the handler.
        let event = match catch_unwind(|| deserialize_event::<H::Event>(&body)) {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => return Outcome::Failure(e),
            Err(payload) => return Outcome::Failure(panicked(&*payload)),
        };
        let event_len = body.len();
        self.response_buf.reserve_for(event_len);
        drop(body);
        let trace = ctx.xray_trace_id.clone();
        // Pinned in place, as the invocation is (see `serve`).
        let call = std::pin::pin!(self.handler.call(event, ctx));
        let call = std::pin::pin!(xray::with_trace_id(trace, call));
        let output = match CatchUnwind(call).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Outcome::Failure(e.into()),
            Err(payload) => return Outcome::Failure(panicked(&*payload)),
        };
        // The response is written into the memory the event was read into, now that the
        // event is parsed and its bytes dropped: a large event and its answer then peak at
        // one buffer, not two (see `Client::lend_read_buffer`).
        let buf = &mut self.response_buf;
        let lent = self.client.lend_read_buffer(buf.memory(), event_len);
        let written = catch_unwind(AssertUnwindSafe(|| output.into_response(buf)));
        if lent {
            self.client.return_read_buffer(buf.memory());
        }
        match written {
            Ok(Ok(response)) => Outcome::Response(response),
            Ok(Err(e)) => Outcome::Failure(e),
            Err(payload) => Outcome::Failure(panicked(&*payload)),
        }
    }

    /// Posts the outcome and queues the next `/next` behind it, so both go out in one write
    /// and the event can come back without another round trip (HTTP/1.1 pipelining; the
    /// Runtime API answers them in order). Answers about this invocation (400/403/410/413)
    /// and transport failures are logged and the loop goes on (edge-cases A11–A14); `/next`
    /// decides whether the environment is still usable.
    async fn report(&mut self, request_id: &str, outcome: Outcome) {
        let answer = match outcome {
            Outcome::Response(Response {
                content_type,
                body: ResponseBody::Buffered(body),
            }) => Answer::Response { body, content_type },
            Outcome::Response(Response {
                content_type,
                body: ResponseBody::Streaming { prelude, chunks },
            }) => {
                let answered = self
                    .stream(request_id, &content_type, prelude, chunks)
                    .await;
                self.client.queue_encoded(&self.next_request);
                if answered {
                    self.receive_answer().await;
                }
                return;
            }
            Outcome::Failure(e) => {
                tracing::error!(errorType = %e.error_type(), "invocation failed: {}", e.message());
                let body = serde_json::to_vec(&e.to_error_request()).unwrap_or_default();
                Answer::Error {
                    error_type: e.error_type().to_owned(),
                    body: Bytes::from(body),
                }
            }
        };
        if let Err(e) = answer.queue(&mut self.client, &self.api, request_id) {
            tracing::error!("cannot report the invocation: {e}");
            self.client.queue_encoded(&self.next_request);
            return;
        }
        self.client.queue_encoded(&self.next_request);
        match self.client.receive().await {
            // The connection ended before Lambda answered (it had closed it while idle, say):
            // the result may never have arrived, so it goes once more on a fresh connection.
            // If it had arrived, Lambda refuses the copy (400 or 403), which is harmless.
            Err(ApiError::Transport(e)) => {
                tracing::warn!(
                    "the result of this invocation was lost with its connection ({e}); sending it once more"
                );
                // The `/next` queued behind it was lost too: it is queued again below.
                self.client.forget_lost();
                if answer
                    .queue(&mut self.client, &self.api, request_id)
                    .is_ok()
                {
                    self.client.queue_encoded(&self.next_request);
                    log_answer(self.client.receive().await);
                }
            }
            other => log_answer(other),
        }
    }

    /// Reads Lambda's answer to a streamed `/response`.
    async fn receive_answer(&mut self) {
        log_answer(self.client.receive().await);
    }

    /// Streams a response (protocol.md §1.3): the head, the prelude if any, then each chunk
    /// as the stream yields it, each written before the next is asked for (back-pressure).
    /// An error or a panic in the stream ends the body with the error trailers. Returns
    /// whether Lambda's answer is still to be read: `false` when the request could not be
    /// sent (the failure already took the answer's place).
    async fn stream(
        &mut self,
        request_id: &str,
        content_type: &str,
        prelude: Option<Bytes>,
        mut chunks: ChunkStream,
    ) -> bool {
        let content_type = HeaderValue::from_str(content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
        let head = match self.api.streaming_response(request_id, content_type) {
            Ok(head) => head,
            Err(e) => {
                tracing::error!("cannot report the invocation: {e}");
                return false;
            }
        };
        if let Err(e) = self.client.begin_chunked(head).await {
            tracing::error!("could not start the streamed response: {e}");
            return false;
        }
        if let Some(prelude) = prelude {
            if let Err(e) = self.client.send_chunk(prelude).await {
                tracing::error!("the streamed response was cut off: {e}");
                return false;
            }
        }
        let failure = loop {
            let next = std::future::poll_fn(|cx| chunks.as_mut().poll_next(cx));
            match CatchUnwind(next).await {
                Ok(Some(Ok(chunk))) => {
                    if let Err(e) = self.client.send_chunk(chunk).await {
                        tracing::error!("the streamed response was cut off: {e}");
                        return false;
                    }
                }
                Ok(Some(Err(e))) => break Some(e),
                Ok(None) => break None,
                Err(payload) => break Some(panicked(&*payload)),
            }
        };
        // The producer learns that nobody reads any more.
        drop(chunks);
        match failure {
            None => self.client.end_chunked(&[]),
            Some(e) => {
                tracing::error!(
                    errorType = %e.error_type(),
                    "invocation failed part-way through its streamed response: {}",
                    e.message()
                );
                let json = serde_json::to_vec(&e.to_error_request()).unwrap_or_default();
                let trailers = stream_error_trailers(e.error_type(), &json);
                let fields = trailers.each_ref().map(|(name, value)| (*name, value));
                self.client.end_chunked(&fields);
            }
        }
        true
    }
}

/// A buffered result, kept so that it can be sent again.
enum Answer {
    Response {
        body: Bytes,
        content_type: std::borrow::Cow<'static, str>,
    },
    Error {
        error_type: String,
        body: Bytes,
    },
}

impl Answer {
    /// Queues the request that delivers this result on `client`. A response, sent for
    /// every invocation, is framed straight into the client's buffer.
    fn queue(
        &self,
        client: &mut Client,
        api: &RuntimeApi,
        request_id: &str,
    ) -> Result<(), ironlambda_api_client::InvalidRequestId> {
        match self {
            Answer::Response { body, content_type } => client.queue_framed(
                |out| api.encode_response_head(request_id, content_type, body.len(), out),
                body.clone(),
            ),
            Answer::Error { error_type, body } => {
                client.queue(api.error(request_id, error_type, body.clone())?);
                Ok(())
            }
        }
    }
}

/// Logs how Lambda answered a result (edge-cases A11–A14: refusals are not fatal).
fn log_answer(answer: Result<ApiResponse, ApiError>) {
    if let Err(e) = answer {
        if e.is_per_invocation() {
            tracing::warn!("Lambda refused the result of this invocation: {e}");
        } else {
            tracing::error!("could not deliver the result of this invocation: {e}");
        }
    }
}

/// Reads the event, naming the field that did not fit (e.g. `items[2].id`).
///
/// Tracking the path costs on every value, so the event is first read without it; only an
/// event that fails is read again, with the path, for the message. (A `Deserialize` impl
/// therefore runs twice on a failing event.)
fn deserialize_event<E: serde::de::DeserializeOwned>(body: &[u8]) -> Result<E, Error> {
    if let Ok(event) = serde_json::from_slice(body) {
        return Ok(event);
    }
    let invalid = |detail: String| {
        Error::new(
            INVALID_EVENT_ERROR_TYPE,
            format!("failed to deserialize the event{detail}"),
        )
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let event = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            invalid(format!(": {inner}"))
        } else {
            invalid(format!(" at `{path}`: {inner}"))
        }
    })?;
    de.end().map_err(|e| invalid(format!(": {e}")))?;
    Ok(event)
}

/// Reports an init failure to `/runtime/init/error` and hands it back for the exit.
pub(crate) async fn report_init_error(
    client: &mut Client,
    api: &RuntimeApi,
    error: Error,
) -> Error {
    tracing::error!(errorType = %error.error_type(), "init failed: {}", error.message());
    let body = serde_json::to_vec(&error.to_error_request()).unwrap_or_default();
    if let Err(e) = client
        .send(api.init_error(error.error_type(), Bytes::from(body)))
        .await
    {
        tracing::error!("could not report the init failure: {e}");
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Order {
        id: u32,
        items: Vec<Item>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        sku: String,
    }

    #[test]
    fn deserialize_errors_name_the_field() {
        let e =
            deserialize_event::<Order>(br#"{"id":1,"items":[{"sku":"a"},{"sku":5}]}"#).unwrap_err();
        assert_eq!(e.error_type(), INVALID_EVENT_ERROR_TYPE);
        assert!(e.message().contains("`items[1].sku`"), "{}", e.message());
        let e = deserialize_event::<Order>(b"not json").unwrap_err();
        assert!(
            e.message()
                .starts_with("failed to deserialize the event: expected"),
            "{}",
            e.message()
        );
        let e = deserialize_event::<Order>(br#"{"id":1,"items":[]} trailing"#).unwrap_err();
        assert!(e.message().contains("trailing"), "{}", e.message());
        assert_eq!(
            deserialize_event::<Order>(br#"{"id":1,"items":[]}"#)
                .unwrap()
                .id,
            1
        );
    }

    proptest::proptest! {
        /// Any event bytes either deserialize or fail that invocation with a clear error.
        #[test]
        fn events_of_any_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            if let Err(e) = deserialize_event::<Order>(&bytes) {
                proptest::prop_assert_eq!(e.error_type(), INVALID_EVENT_ERROR_TYPE);
            }
            let _ = deserialize_event::<serde_json::Value>(&bytes);
        }
    }
}
