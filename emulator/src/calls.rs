//! Messages between the HTTP handlers and the environment task.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use ironlambda_api_client::telemetry::SubscriptionApi;
use ironlambda_api_client::wire::{ApiErrorBody, ErrorRequest};
use tokio::sync::{mpsc, oneshot};

/// An API refusal: status and `{"errorType","errorMessage"}`.
pub(crate) type Refusal = (StatusCode, ApiErrorBody);

/// Where an API call's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, Refusal>>;

/// A refusal with a status, type and message.
pub(crate) fn refuse(status: StatusCode, error_type: &str, message: impl Into<String>) -> Refusal {
    (status, ApiErrorBody::new(error_type, message))
}

/// The 400 for a body whose connection ended early (edge-cases A16).
pub(crate) fn truncated() -> Refusal {
    refuse(
        StatusCode::BAD_REQUEST,
        "TruncatedHTTPRequest",
        "The HTTP request body was truncated",
    )
}

/// An invocation waiting for, or being run by, the environment.
pub(crate) struct Invocation {
    pub(crate) request_id: String,
    pub(crate) body: Bytes,
    pub(crate) client_context: Option<String>,
    pub(crate) trace_id: Option<String>,
    /// `None` for asynchronous (`Event`) invocations: nobody waits for the result.
    pub(crate) reply: Option<oneshot::Sender<InvokeResult>>,
}

/// What the caller of an invocation gets.
#[derive(Debug)]
pub(crate) enum InvokeResult {
    /// The runtime posted `/response`.
    Success {
        body: Bytes,
        content_type: Option<HeaderValue>,
    },
    /// The runtime posted `/error`, or something failed: a crash, a timeout, init.
    FunctionError {
        body: Bytes,
        content_type: Option<HeaderValue>,
    },
    /// The runtime is streaming its response (protocol.md §1.3).
    Streaming(ResponseStream),
}

/// A streamed response on its way to the caller: the chunks as the runtime sends them,
/// then how the stream ended, as the environment decided.
#[derive(Debug)]
pub(crate) struct ResponseStream {
    pub(crate) content_type: Option<HeaderValue>,
    pub(crate) chunks: mpsc::Receiver<Bytes>,
    pub(crate) end: oneshot::Receiver<StreamEnd>,
}

/// A response stream as a reply body reads it: each chunk as it arrives, then the ending
/// (a `T` sent once the stream is over). The ending decides even while chunks are still
/// open (a timeout, say): nothing after it is read.
pub(crate) struct Following<T> {
    chunks: Option<mpsc::Receiver<Bytes>>,
    end: Option<oneshot::Receiver<T>>,
}

/// What [`Following::poll_piece`] gives: a chunk, or the ending (`Err` when its sender
/// went away without one: the emulator stopped).
pub(crate) enum Piece<T> {
    Chunk(Bytes),
    Ended(Result<T, oneshot::error::RecvError>),
}

impl<T> Following<T> {
    pub(crate) fn new(chunks: mpsc::Receiver<Bytes>, end: oneshot::Receiver<T>) -> Self {
        Following {
            chunks: Some(chunks),
            end: Some(end),
        }
    }

    /// The next chunk, else the ending once it is known; `None` after the ending.
    pub(crate) fn poll_piece(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Piece<T>>> {
        use std::future::Future;
        use std::task::Poll;
        if let Some(chunks) = &mut self.chunks {
            match chunks.poll_recv(cx) {
                Poll::Ready(Some(data)) => return Poll::Ready(Some(Piece::Chunk(data))),
                Poll::Ready(None) => self.chunks = None,
                Poll::Pending => {}
            }
        }
        let Some(end) = &mut self.end else {
            return Poll::Ready(None);
        };
        let Poll::Ready(ending) = std::pin::Pin::new(end).poll(cx) else {
            return Poll::Pending;
        };
        self.end = None;
        self.chunks = None;
        Poll::Ready(Some(Piece::Ended(ending)))
    }
}

/// How a streamed response ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// Every byte arrived and no error trailer came.
    Complete,
    /// The function failed part-way (error trailers), or the platform stopped it (timeout,
    /// crash, size limit): the caller gets this error after the bytes already sent.
    Failed {
        error_type: String,
        /// The error JSON (`{"errorMessage","errorType",…}`).
        body: Bytes,
    },
}

impl StreamEnd {
    /// A failure made by the platform.
    pub(crate) fn platform(error_type: &str, message: String) -> Self {
        StreamEnd::Failed {
            error_type: error_type.to_owned(),
            body: error_json(error_type, message),
        }
    }
}

/// How the runtime's streamed `/response` body ended, as read off the connection.
#[derive(Debug)]
pub(crate) enum StreamedBody {
    /// The last chunk arrived, with no error trailers.
    Complete,
    /// The last chunk arrived with `Lambda-Runtime-Function-Error-Type` (and the decoded
    /// `…-Error-Body`, when it was valid base64).
    ErrorTrailers {
        error_type: String,
        body: Option<Bytes>,
    },
    /// More than the streaming limit was sent; this many bytes were read.
    TooLarge(usize),
    /// The connection ended before the body did (edge-cases A16).
    Truncated,
}

impl InvokeResult {
    /// A function error made by the platform (`Runtime.ExitError`, `Sandbox.Timedout`, …).
    pub(crate) fn platform_error(error_type: &str, message: String) -> Self {
        InvokeResult::FunctionError {
            body: error_json(error_type, message),
            content_type: Some(HeaderValue::from_static("application/json")),
        }
    }
}

/// `{"errorMessage","errorType","stackTrace":[]}` as bytes.
pub(crate) fn error_json(error_type: &str, message: String) -> Bytes {
    let e = ErrorRequest {
        error_message: message,
        error_type: error_type.to_owned(),
        stack_trace: Vec::new(),
    };
    Bytes::from(serde_json::to_vec(&e).unwrap_or_default())
}

/// The `errorType` of an error JSON body, when it is one.
pub(crate) fn error_type_of(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorRequest>(body)
        .ok()
        .map(|e| e.error_type)
}

/// The event a runtime `/next` call receives.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) request_id: String,
    pub(crate) deadline_ms: u64,
    pub(crate) invoked_function_arn: String,
    pub(crate) trace_id: Option<String>,
    pub(crate) client_context: Option<String>,
    pub(crate) body: Bytes,
}

/// A body posted to an API, read with a size limit.
pub(crate) enum PostedBody {
    Complete(Bytes),
    TooLarge(usize),
    /// The connection ended before the body did (edge-cases A16).
    Truncated,
}

/// A Runtime API call.
pub(crate) enum RuntimeCall {
    Next(Reply<std::sync::Arc<Event>>),
    Response {
        id: String,
        body: PostedBody,
        content_type: Option<HeaderValue>,
        reply: Reply<()>,
    },
    Error {
        id: String,
        body: PostedBody,
        content_type: Option<HeaderValue>,
        error_type: Option<String>,
        reply: Reply<()>,
    },
    /// A streamed `/response` began: the caller is answered with the stream, and the
    /// reply is where the body's chunks go.
    StreamStart {
        id: String,
        content_type: Option<HeaderValue>,
        reply: Reply<mpsc::Sender<Bytes>>,
    },
    /// A streamed `/response` body ended.
    StreamEnd {
        id: String,
        body: StreamedBody,
        reply: Reply<()>,
    },
    InitError {
        body: PostedBody,
        content_type: Option<HeaderValue>,
        error_type: Option<String>,
        reply: Reply<()>,
    },
}

/// When an extension reported a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorPhase {
    /// `/extension/init/error`.
    Init,
    /// `/extension/exit/error`.
    Exit,
}

/// A successful registration: the new id and the reply body.
pub(crate) struct Registration {
    pub(crate) id: String,
    pub(crate) body: Bytes,
}

/// An Extensions, Telemetry or Logs API call. Identifiers are checked for presence and
/// shape by the HTTP handler; the environment decides whether they are known.
pub(crate) enum ExtensionCall {
    Register {
        name: String,
        body: PostedBody,
        account_id: bool,
        reply: Reply<Registration>,
    },
    Next {
        id: String,
        reply: Reply<Bytes>,
    },
    Error {
        id: String,
        phase: ErrorPhase,
        error_type: String,
        body: PostedBody,
        reply: Reply<()>,
    },
    Subscribe {
        id: String,
        api: SubscriptionApi,
        body: PostedBody,
        reply: Reply<()>,
    },
}

/// Any call to the environment.
pub(crate) enum Call {
    Runtime(RuntimeCall),
    Extension(ExtensionCall),
}

/// Where one environment's API handlers send their calls: the driver's channel, each call
/// tagged with the environment whose Runtime API endpoint it came to.
#[derive(Clone)]
pub(crate) struct Calls {
    pub(crate) environment: usize,
    pub(crate) tx: mpsc::Sender<(usize, Call)>,
}

impl Calls {
    /// Sends `call`; `Err` when the driver has stopped.
    pub(crate) async fn send(&self, call: Call) -> Result<(), Call> {
        self.tx
            .send((self.environment, call))
            .await
            .map_err(|e| e.0.1)
    }
}
