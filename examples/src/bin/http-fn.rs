//! An HTTP function without a web framework: a plain async fn from `http::Request` to a
//! response, for any HTTP trigger (API Gateway, ALB, a Function URL in `BUFFERED` mode).
//!
//! - `GET /?name=Ada` → 200 `text/plain` `Hello, Ada!`
//! - `POST /` with a form (`name=Ada`) or JSON (`{"name":"Ada"}`) → 201 JSON
//!   `{"greeting":"Hello, Ada!"}`
//! - anything else → 405

use http::{Method, StatusCode};
use ironlambda_http::{Error, IntoResponse, Json, Params, Request, RequestExt};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Greet {
    name: String,
}

async fn greet(req: Request) -> Result<http::Response<ironlambda_http::ResponseBody>, Error> {
    match *req.method() {
        Method::GET => {
            let query = req.query_string_parameters();
            let name = query.get("name").unwrap_or("world");
            Ok(format!("Hello, {name}!").into_response())
        }
        Method::POST => {
            let is_json = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"));
            let name = if is_json {
                match serde_json::from_slice::<Greet>(req.body()) {
                    Ok(g) => g.name,
                    Err(e) => {
                        return Ok((StatusCode::BAD_REQUEST, format!("{e}\n")).into_response());
                    }
                }
            } else {
                let form = Params::from_query(req.body().text().unwrap_or(""));
                form.get("name").unwrap_or("world").to_owned()
            };
            let greeting = json!({ "greeting": format!("Hello, {name}!") });
            Ok((StatusCode::CREATED, Json(greeting)).into_response())
        }
        _ => Ok(StatusCode::METHOD_NOT_ALLOWED.into_response()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    ironlambda_http::run(greet).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use ironlambda_http::Body;

    async fn call(req: http::Request<Body>) -> (StatusCode, String) {
        let response = greet(req).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_get_greets_the_name_in_the_query() {
        let req = http::Request::get("/?name=Ada")
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(req).await, (StatusCode::OK, "Hello, Ada!".into()));
    }

    #[tokio::test]
    async fn a_posted_form_or_json_gets_a_created_greeting() {
        let form = http::Request::post("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("name=Grace+Hopper"))
            .unwrap();
        let (status, body) = call(form).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body, r#"{"greeting":"Hello, Grace Hopper!"}"#);
        let json = http::Request::post("/")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"name":"Ada"}"#))
            .unwrap();
        assert_eq!(call(json).await.1, r#"{"greeting":"Hello, Ada!"}"#);
    }

    #[tokio::test]
    async fn other_methods_are_not_allowed() {
        let req = http::Request::delete("/").body(Body::empty()).unwrap();
        assert_eq!(call(req).await.0, StatusCode::METHOD_NOT_ALLOWED);
    }
}
