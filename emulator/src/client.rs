//! A small Invoke API client, for tests and tools that drive an emulator over real HTTP.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use ironlambda_api_client::headers;
use tokio::net::TcpStream;

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

/// Sends one request to the emulator at `addr` on a fresh connection and reads the reply.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> std::io::Result<InvokeResponse> {
    let io_err = |e: hyper::Error| std::io::Error::other(e);
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io_err)?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(io_err)?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(io_err)?.to_bytes();
    Ok(InvokeResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}
