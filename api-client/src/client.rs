//! One keep-alive HTTP/1.1 connection to the Lambda APIs.
//!
//! A runtime loop talks to a single local endpoint, one request at a time, so a pool
//! would only add cost: this client owns one `hyper` HTTP/1.1 connection, opens it on
//! first use, and reopens it when the server has closed it. It sets no timeout: the
//! `/next` long-poll may legitimately block for as long as the sandbox is frozen
//! (protocol.md §0).

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::endpoint::Endpoint;
use crate::error::{ApiError, TransportError};
use crate::runtime_api::Body;

/// How many times a long-poll (`/next`, `/event/next`) is tried before giving up.
pub const POLL_ATTEMPTS: u32 = 6;
/// The first pause between long-poll attempts; it doubles (50 ms … 800 ms, ~1.5 s in all).
pub const POLL_BACKOFF: Duration = Duration::from_millis(50);

/// A successful (2xx) answer, with its body read in full.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The status code.
    pub status: StatusCode,
    /// The reply headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

type Driver = Pin<Box<hyper::client::conn::http1::Connection<TokioIo<TcpStream>, Body>>>;

/// One open HTTP/1.1 connection: the request half and the connection future, which is
/// polled inside the caller's own task while a request is in flight. (A spawned connection
/// task would cost a cross-task wake-up and a scheduler pass for every reply.)
struct Connection {
    sender: SendRequest<Body>,
    driver: Driver,
    /// The connection future has completed; it must not be polled again.
    ended: bool,
}

impl Connection {
    fn usable(&self) -> bool {
        !self.ended && !self.sender.is_closed()
    }
}

/// Runs `op` while driving the connection future.
async fn drive<F: std::future::Future>(driver: &mut Driver, ended: &mut bool, op: F) -> F::Output {
    tokio::pin!(op);
    loop {
        if *ended {
            return op.await;
        }
        tokio::select! {
            biased;
            out = &mut op => return out,
            _ = driver.as_mut() => *ended = true,
        }
    }
}

/// A keep-alive connection to one Lambda API endpoint.
pub struct Client {
    authority: String,
    connection: Option<Connection>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("authority", &self.authority)
            .field("connected", &self.connection.is_some())
            .finish()
    }
}

fn transport(
    context: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ApiError {
    ApiError::Transport(TransportError {
        context,
        source: source.into(),
    })
}

impl Client {
    /// A client for `endpoint`; it connects on the first request.
    pub fn new(endpoint: &Endpoint) -> Self {
        Client {
            authority: endpoint.authority().to_owned(),
            connection: None,
        }
    }

    async fn connect(&self) -> Result<Connection, ApiError> {
        let stream = TcpStream::connect(self.authority.as_str())
            .await
            .map_err(|e| transport("connecting to the Lambda API", e))?;
        // Requests are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport("starting HTTP/1.1", e))?;
        Ok(Connection {
            sender,
            driver: Box::pin(driver),
            ended: false,
        })
    }

    /// Sends `req` and reads the whole reply. A non-2xx status becomes a typed [`ApiError`].
    ///
    /// If a reused connection turns out to be closed before the request was written, the
    /// request is sent once more on a fresh connection; a request that may have reached the
    /// server is never sent twice.
    pub async fn send(&mut self, req: Request<Body>) -> Result<ApiResponse, ApiError> {
        let mut req = req;
        let mut fresh = false;
        loop {
            let mut conn = match self.connection.take() {
                Some(c) if c.usable() => c,
                _ => {
                    fresh = true;
                    self.connect().await?
                }
            };
            let Connection {
                sender,
                driver,
                ended,
            } = &mut conn;
            if drive(driver, ended, sender.ready()).await.is_err() {
                if fresh {
                    return Err(transport("Lambda API connection closed", "not ready"));
                }
                continue;
            }
            let attempt = drive(driver, ended, sender.try_send_request(req)).await;
            match attempt {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = drive(&mut conn.driver, &mut conn.ended, body.collect())
                        .await
                        .map_err(|e| transport("reading the Lambda API reply", e))?
                        .to_bytes();
                    self.connection = Some(conn);
                    return if parts.status.is_success() {
                        Ok(ApiResponse {
                            status: parts.status,
                            headers: parts.headers,
                            body,
                        })
                    } else {
                        Err(ApiError::from_status(parts.status, &body))
                    };
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh => {
                        req = unsent;
                        fresh = true;
                        self.connection = Some(self.connect().await?);
                    }
                    _ => return Err(transport("sending to the Lambda API", e.into_error())),
                },
            }
        }
    }
}

impl Client {
    /// A long-poll with bounded retries: transport failures and 5xx answers are retried
    /// [`POLL_ATTEMPTS`] times with exponential backoff from [`POLL_BACKOFF`], calling
    /// `on_retry(attempt, error)` before each pause; anything else is returned at once.
    pub async fn poll(
        &mut self,
        request: impl Fn() -> Request<Body>,
        mut on_retry: impl FnMut(u32, &ApiError),
    ) -> Result<ApiResponse, ApiError> {
        let mut pause = POLL_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.send(request()).await {
                Err(e @ (ApiError::Transport(_) | ApiError::Server(..)))
                    if attempt < POLL_ATTEMPTS =>
                {
                    on_retry(attempt, &e);
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime_api::RuntimeApi;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn read_request(sock: &mut TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// A server that answers one request per connection and then closes it: the client
    /// must notice and reconnect instead of failing the second request.
    #[tokio::test]
    async fn reconnects_after_the_server_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut lines = Vec::new();
            for i in 0..3 {
                let (mut sock, _) = listener.accept().await.unwrap();
                let req = read_request(&mut sock).await;
                lines.push(req.lines().next().unwrap().to_owned());
                let body = format!("event-{i}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nlambda-runtime-aws-request-id: id-{i}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
            }
            lines
        });
        let endpoint = Endpoint::parse(&addr.to_string()).unwrap();
        let api = RuntimeApi::new(endpoint.clone());
        let mut client = Client::new(&endpoint);
        for i in 0..3 {
            let r = client.send(api.next()).await.unwrap();
            assert_eq!(r.body, format!("event-{i}"));
        }
        let lines = server.await.unwrap();
        assert!(
            lines
                .iter()
                .all(|l| l == "GET /2018-06-01/runtime/invocation/next HTTP/1.1"),
            "{lines:?}"
        );
    }

    #[tokio::test]
    async fn error_statuses_are_typed_and_unreachable_is_transport() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            read_request(&mut sock).await;
            let body = r#"{"errorType":"InvalidStateTransition","errorMessage":"no"}"#;
            let resp = format!(
                "HTTP/1.1 403 Forbidden\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
        });
        let endpoint = Endpoint::parse(&addr.to_string()).unwrap();
        let api = RuntimeApi::new(endpoint.clone());
        let mut client = Client::new(&endpoint);
        match client.send(api.next()).await {
            Err(ApiError::Forbidden(b)) => assert_eq!(b.error_type, "InvalidStateTransition"),
            other => panic!("{other:?}"),
        }

        // Nothing listens on a port we just released.
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let endpoint = Endpoint::parse(&closed.to_string()).unwrap();
        let mut client = Client::new(&endpoint);
        let err = client
            .send(RuntimeApi::new(endpoint).next())
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::Transport(_)), "{err:?}");
        assert!(err.to_string().contains("unreachable"), "{err}");
    }
}
