//! An axum `Router` as a Lambda function, unchanged: the same routes you would serve with
//! `axum::serve`, run by `ironlambda_http`. Deploy it behind a Function URL whose invoke
//! mode is `RESPONSE_STREAM` (every answer streams; `/stream` shows it).
//!
//! - `GET /hello/{name}` → 200 `text/plain` `Hello, {name}!`
//! - `POST /echo` → 200 with the request's body and content type
//! - `GET /headers` → the request's headers as JSON, repeated ones as arrays
//! - `GET /stream` → 5 lines, one every 100 ms
//!
//! Locally, from `examples/`: `cargo ironlambda watch --bin http-axum --url-port 9001`,
//! then `curl -N http://127.0.0.1:9001/stream`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Map, Value};

/// Lines `/stream` sends, and the pause before each after the first.
const LINES: u32 = 5;
const PAUSE: Duration = Duration::from_millis(100);

fn router() -> Router {
    Router::new()
        .route("/hello/{name}", get(hello))
        .route("/echo", post(echo))
        .route("/headers", get(headers))
        .route("/stream", get(stream))
}

async fn hello(Path(name): Path<String>) -> String {
    format!("Hello, {name}!")
}

async fn echo(headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| header::HeaderValue::from_static("application/octet-stream"));
    ([(header::CONTENT_TYPE, content_type)], body)
}

async fn headers(headers: HeaderMap) -> axum::Json<Value> {
    let mut out = Map::new();
    for name in headers.keys() {
        let mut values: Vec<Value> = headers
            .get_all(name)
            .iter()
            .map(|v| Value::from(String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let value = match values.len() {
            1 => values.remove(0),
            _ => Value::from(values),
        };
        out.insert(name.as_str().to_owned(), value);
    }
    axum::Json(Value::Object(out))
}

async fn stream() -> impl IntoResponse {
    let lines = futures_util::stream::unfold(1, |n| async move {
        if n > LINES {
            return None;
        }
        if n > 1 {
            tokio::time::sleep(PAUSE).await;
        }
        Some((Ok::<_, Infallible>(format!("line {n} of {LINES}\n")), n + 1))
    });
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(lines),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ironlambda_http::Error> {
    ironlambda_http::run_streaming(router()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn call(request: Request<Body>) -> (u16, HeaderMap, Bytes) {
        let response = router().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }

    #[tokio::test]
    async fn hello_greets_the_name_in_the_path() {
        let (status, headers, body) =
            call(Request::get("/hello/Ada").body(Body::empty()).unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_eq!(body, "Hello, Ada!");
    }

    #[tokio::test]
    async fn echo_answers_the_body_with_its_content_type() {
        let request = Request::post("/echo")
            .header("content-type", "application/xml")
            .body(Body::from("<a/>"))
            .unwrap();
        let (status, headers, body) = call(request).await;
        assert_eq!(status, 200);
        assert_eq!(headers[header::CONTENT_TYPE], "application/xml");
        assert_eq!(body, "<a/>");
    }

    #[tokio::test]
    async fn repeated_headers_come_back_as_arrays() {
        let request = Request::get("/headers")
            .header("x-one", "1")
            .header("x-two", "a")
            .header("x-two", "b")
            .body(Body::empty())
            .unwrap();
        let (_, _, body) = call(request).await;
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["x-one"], "1");
        assert_eq!(json["x-two"], serde_json::json!(["a", "b"]));
    }
}
