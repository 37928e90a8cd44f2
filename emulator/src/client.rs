//! A small Invoke API client, for tests and tools that drive an emulator over real HTTP.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use ironlambda_api_client::headers;
use tokio::net::TcpStream;

use crate::eventstream::{self, Message};

/// What the Invoke API answered.
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    /// HTTP status (200 for success and for function errors).
    pub status: StatusCode,
    /// The reply headers.
    pub headers: HeaderMap,
    /// The payload, or the error JSON.
    pub body: Bytes,
}

impl InvokeResponse {
    /// `X-Amz-Function-Error` (`Unhandled`), when the function failed.
    pub fn function_error(&self) -> Option<&str> {
        self.headers.get(headers::AMZ_FUNCTION_ERROR)?.to_str().ok()
    }

    /// The request id (`X-Amzn-RequestId`).
    pub fn request_id(&self) -> Option<&str> {
        self.headers.get(headers::AMZN_REQUEST_ID)?.to_str().ok()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The Invoke API request for `function` with `payload` and optional extra headers.
pub fn invoke_request(
    addr: SocketAddr,
    function: &str,
    payload: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(payload.into()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = format!("/2015-03-31/functions/{function}/invocations")
        .parse()
        .unwrap_or_default();
    if let Ok(host) = addr.to_string().parse() {
        req.headers_mut().insert(header::HOST, host);
    }
    req
}

/// The InvokeWithResponseStream request for `function` with `payload`.
pub fn invoke_stream_request(
    addr: SocketAddr,
    function: &str,
    payload: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut req = invoke_request(addr, function, payload);
    *req.uri_mut() = format!("/2021-11-15/functions/{function}/response-streaming-invocations")
        .parse()
        .unwrap_or_default();
    req
}

fn io_err(e: hyper::Error) -> std::io::Error {
    std::io::Error::other(e)
}

async fn request(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> std::io::Result<http::Response<Incoming>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io_err)?;
    tokio::spawn(conn);
    sender.send_request(req).await.map_err(io_err)
}

/// What InvokeWithResponseStream answered: status and headers now, the events as they
/// arrive.
#[derive(Debug)]
pub struct EventStream {
    /// HTTP status (200 when the invocation ran).
    pub status: StatusCode,
    /// The reply headers.
    pub headers: HeaderMap,
    body: Incoming,
    buf: BytesMut,
    ready: std::collections::VecDeque<Message>,
}

impl EventStream {
    /// The next event (`PayloadChunk`, then `InvokeComplete`), or `None` at the end.
    pub async fn next_event(&mut self) -> std::io::Result<Option<Message>> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Ok(Some(m));
            }
            let Some(frame) = self.body.frame().await else {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(std::io::Error::other("the event stream ended mid-message"));
            };
            if let Ok(data) = frame.map_err(io_err)?.into_data() {
                self.buf.extend_from_slice(&data);
                self.ready
                    .extend(eventstream::decode(&mut self.buf).map_err(std::io::Error::other)?);
            }
        }
    }
}

/// Sends an InvokeWithResponseStream request (see [`invoke_stream_request`]) and returns
/// once the reply's head is in; read the events with [`EventStream::next_event`].
pub async fn send_streaming(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> std::io::Result<EventStream> {
    let (parts, body) = request(addr, req).await?.into_parts();
    Ok(EventStream {
        status: parts.status,
        headers: parts.headers,
        body,
        buf: BytesMut::new(),
        ready: Default::default(),
    })
}

/// Sends one request to the emulator at `addr` on a fresh connection and reads the reply.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> std::io::Result<InvokeResponse> {
    let (parts, body) = request(addr, req).await?.into_parts();
    let body = body.collect().await.map_err(io_err)?.to_bytes();
    Ok(InvokeResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
