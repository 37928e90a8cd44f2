//! Every trigger's event round-trips: the request a service sees holds what the client
//! sent (method, path, repeated query names and headers, cookies, decoded bodies, the
//! trigger's context), and the answer goes back in the shape that trigger expects.
//!
//! The fixtures in `tests/events/` follow the shapes AWS documents for each trigger.

use std::sync::Arc;

use base64::Engine;
use http::StatusCode;
use ironlambda_http::{
    Adapter, Body, Error, HttpEvent, HttpOutput, Request, RequestContext, RequestExt, Trigger,
};
use ironlambda_runtime::{Config, Context, Handler};
use serde_json::{Value, json};

fn event(name: &str) -> HttpEvent {
    let path = format!("{}/tests/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ctx() -> Context {
    Context::new("inv-1", Arc::new(Config::default()))
}

/// A service that answers with what it saw, a binary or text body as asked, two cookies
/// and a repeated header.
async fn mirror(req: Request) -> Result<http::Response<Body>, Error> {
    let mut headers = serde_json::Map::new();
    for name in req.headers().keys() {
        let values: Vec<Value> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| Value::from(v.to_str().unwrap()))
            .collect();
        headers.insert(name.as_str().to_owned(), Value::from(values));
    }
    let seen = json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "raw_path": req.raw_http_path(),
        "query": req.query_string_parameters().iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
        "headers": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(req.body()),
        "path_parameters": req.path_parameters().map(|p| p.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>()),
        "stage_variables": req.stage_variables().map(|p| p.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>()),
        "source_ip": req.request_context().and_then(|c| c.source_ip()),
        "invocation": req.lambda_context().map(|c| c.request_id.clone()),
    });
    Ok(http::Response::builder()
        .status(StatusCode::CREATED)
        .header("content-type", "application/json")
        .header("set-cookie", "a=1; Secure")
        .header("set-cookie", "b=2")
        .header("x-multi", "1")
        .header("x-multi", "2")
        .body(Body::from(seen.to_string()))
        .unwrap())
}

/// Runs `event` through the mirror and returns the response JSON and what the mirror saw.
async fn round_trip(event: HttpEvent) -> (Value, Value) {
    let output = Adapter::new(mirror).call(event, ctx()).await.unwrap();
    let HttpOutput::Buffered(rendered) = output else {
        panic!("a buffered adapter renders buffered responses");
    };
    let response = serde_json::to_value(&rendered).unwrap();
    assert_eq!(response["statusCode"], 201);
    assert_eq!(response["isBase64Encoded"], false, "JSON goes as text");
    let seen = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    (response, seen)
}

fn body_of(seen: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(seen["body"].as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn a_rest_api_event_keeps_repeated_query_names_and_headers_and_answers_multi_value_headers() {
    let event = event("apigw-rest.json");
    assert_eq!(event.trigger(), Trigger::ApiGatewayRest);
    let (response, seen) = round_trip(event).await;
    assert_eq!(seen["method"], "POST");
    // The client's path includes the stage; the decoded values are encoded again.
    assert_eq!(
        seen["uri"],
        "/Prod/orders/42?tag=red&tag=green&q=tea+%26+cake"
    );
    assert_eq!(
        seen["query"],
        json!([["tag", "red"], ["tag", "green"], ["q", "tea & cake"]])
    );
    assert_eq!(seen["headers"]["x-tag"], json!(["a", "b"]));
    assert_eq!(body_of(&seen), br#"{"quantity":2}"#);
    assert_eq!(seen["path_parameters"], json!([["id", "42"]]));
    assert_eq!(seen["stage_variables"], json!([["table", "orders-prod"]]));
    assert_eq!(seen["source_ip"], "203.0.113.9");
    assert_eq!(seen["invocation"], "inv-1");
    assert_eq!(
        response["multiValueHeaders"]["set-cookie"],
        json!(["a=1; Secure", "b=2"])
    );
    assert_eq!(response["multiValueHeaders"]["x-multi"], json!(["1", "2"]));
    assert!(response.get("headers").is_none() && response.get("cookies").is_none());
}

#[tokio::test]
async fn a_rest_api_path_can_be_routed_below_the_stage() {
    let request = event("apigw-rest.json").into_request(true).unwrap();
    assert_eq!(request.uri().path(), "/orders/42");
    assert_eq!(request.raw_http_path(), "/Prod/orders/42");
    let Some(RequestContext::ApiGatewayRest(c)) = request.request_context() else {
        panic!("a REST API context");
    };
    assert_eq!(c.resource_path.as_deref(), Some("/orders/{id}"));
    assert_eq!(c.authorizer.as_ref().unwrap()["principalId"], "user-7");
}

#[tokio::test]
async fn an_http_api_event_turns_cookies_into_a_header_and_answers_cookies_apart() {
    let event = event("apigw-http.json");
    assert_eq!(event.trigger(), Trigger::ApiGatewayHttp);
    let (response, seen) = round_trip(event).await;
    assert_eq!(seen["method"], "GET");
    // rawQueryString verbatim: repeated names and the client's own encoding.
    assert_eq!(seen["uri"], "/dev/items/7?color=red&color=blue&q=a%20b");
    assert_eq!(
        seen["query"],
        json!([["color", "red"], ["color", "blue"], ["q", "a b"]])
    );
    assert_eq!(
        seen["headers"]["cookie"],
        json!(["session=s3cr3t; theme=dark"])
    );
    assert_eq!(seen["source_ip"], "203.0.113.20");
    assert_eq!(response["cookies"], json!(["a=1; Secure", "b=2"]));
    assert_eq!(response["headers"]["x-multi"], "1, 2");
    assert!(response["headers"].get("set-cookie").is_none());
    assert!(response.get("multiValueHeaders").is_none());
}

#[tokio::test]
async fn a_named_http_api_stage_can_be_stripped_from_the_path() {
    let request = event("apigw-http.json").into_request(true).unwrap();
    assert_eq!(request.uri().path(), "/items/7");
    assert_eq!(request.raw_http_path(), "/dev/items/7");
}

#[tokio::test]
async fn a_function_url_event_is_told_from_an_http_api_event_and_its_base64_body_is_decoded() {
    let event = event("function-url.json");
    assert_eq!(event.trigger(), Trigger::FunctionUrl);
    let (response, seen) = round_trip(event).await;
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["uri"], "/upload");
    assert_eq!(body_of(&seen), [0x00, 0x01, 0xff, 0x80]);
    assert_eq!(seen["source_ip"], "192.0.2.33");
    assert_eq!(response["cookies"], json!(["a=1; Secure", "b=2"]));
}

#[tokio::test]
async fn an_alb_query_is_passed_on_as_sent_and_the_answer_has_a_status_description() {
    let event = event("alb.json");
    assert_eq!(event.trigger(), Trigger::Alb { multi_value: false });
    let (response, seen) = round_trip(event).await;
    // The ALB does not decode query values, so they are not encoded a second time.
    assert_eq!(seen["uri"], "/search?q=hello%20world&page=2");
    assert_eq!(seen["query"], json!([["q", "hello world"], ["page", "2"]]));
    assert_eq!(seen["headers"]["cookie"], json!(["a=1; b=2"]));
    assert_eq!(response["statusDescription"], "201 Created");
    assert_eq!(response["headers"]["x-multi"], "1, 2");
    // Without multi-value headers, one Set-Cookie is all an ALB can pass on.
    assert_eq!(response["headers"]["set-cookie"], "b=2");
    assert!(response.get("multiValueHeaders").is_none());
}

#[tokio::test]
async fn an_alb_with_multi_value_headers_gets_multi_value_headers_back() {
    let event = event("alb-multi-value.json");
    assert_eq!(event.trigger(), Trigger::Alb { multi_value: true });
    let (response, seen) = round_trip(event).await;
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["uri"], "/form?id=1&id=2&name=J%C3%BCrgen");
    assert_eq!(
        seen["query"],
        json!([["id", "1"], ["id", "2"], ["name", "Jürgen"]])
    );
    assert_eq!(seen["headers"]["x-tag"], json!(["a", "b"]));
    assert_eq!(body_of(&seen), b"name=Ada");
    assert_eq!(
        response["multiValueHeaders"]["set-cookie"],
        json!(["a=1; Secure", "b=2"])
    );
    assert!(response.get("headers").is_none());
}

#[tokio::test]
async fn a_websocket_message_arrives_as_a_post_with_its_connection_in_the_context() {
    let event = event("websocket.json");
    assert_eq!(event.trigger(), Trigger::WebSocket);
    let request = event.into_request(false).unwrap();
    assert_eq!(request.method(), "POST");
    let Some(RequestContext::WebSocket(c)) = request.request_context() else {
        panic!("a WebSocket context");
    };
    assert_eq!(c.connection_id, "GXLKAfX1FiACF9w=");
    assert_eq!(c.event_type, "MESSAGE");
    assert_eq!(
        request.body().text(),
        Some(r#"{"action":"sendmessage","text":"hi"}"#)
    );
    let (response, _) = round_trip(self::event("websocket.json")).await;
    assert_eq!(response["multiValueHeaders"]["x-multi"], json!(["1", "2"]));
}

#[tokio::test]
async fn a_binary_answer_goes_base64_and_text_goes_as_it_is() {
    async fn png(_: Request) -> Result<http::Response<Body>, Error> {
        Ok(http::Response::builder()
            .header("content-type", "image/png")
            .body(Body::from(vec![0x89, b'P', b'N', b'G']))
            .unwrap())
    }
    let output = Adapter::new(png)
        .call(event("function-url.json"), ctx())
        .await
        .unwrap();
    let HttpOutput::Buffered(r) = output else {
        panic!("buffered")
    };
    let r = serde_json::to_value(&r).unwrap();
    assert_eq!(r["isBase64Encoded"], true);
    assert_eq!(r["body"], "iVBORw==");
    assert_eq!(r["statusCode"], 200);

    async fn hello(_: Request) -> Result<&'static str, Error> {
        Ok("Hello")
    }
    let output = Adapter::new(hello)
        .binary_when(|_| false)
        .call(event("function-url.json"), ctx())
        .await
        .unwrap();
    let HttpOutput::Buffered(r) = output else {
        panic!("buffered")
    };
    let r = serde_json::to_value(&r).unwrap();
    assert_eq!(r["body"], "Hello");
    assert_eq!(r["headers"]["content-type"], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn a_body_flagged_base64_that_is_not_fails_the_invocation_as_an_invalid_event() {
    let text = std::fs::read_to_string(format!(
        "{}/tests/events/function-url.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("AAH/gA==", "not base64!");
    let event: HttpEvent = serde_json::from_str(&text).unwrap();
    let e = Adapter::new(mirror).call(event, ctx()).await.unwrap_err();
    assert_eq!(e.error_type(), "Runtime.InvalidEvent");
    assert!(e.message().contains("base64"), "{}", e.message());
}

#[tokio::test]
async fn an_axum_router_answers_through_the_adapter_unchanged() {
    use axum::Router;
    use axum::extract::Path;
    use axum::routing::get;
    let router = Router::new().route(
        "/items/{id}",
        get(|Path(id): Path<u32>| async move { format!("item {id}") }),
    );
    let output = Adapter::new(router)
        .strip_stage(true)
        .call(event("apigw-http.json"), ctx())
        .await
        .unwrap();
    let HttpOutput::Buffered(r) = output else {
        panic!("buffered")
    };
    let r = serde_json::to_value(&r).unwrap();
    assert_eq!(r["statusCode"], 200);
    assert_eq!(r["body"], "item 7");
}

#[test]
fn every_http_sample_event_cargo_ironlambda_ships_is_recognised() {
    let dir = format!("{}/../cargo-ironlambda/events", env!("CARGO_MANIFEST_DIR"));
    for (file, trigger) in [
        ("apigw-rest.json", Trigger::ApiGatewayRest),
        ("apigw-http.json", Trigger::ApiGatewayHttp),
        ("function-url.json", Trigger::FunctionUrl),
        ("alb.json", Trigger::Alb { multi_value: false }),
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        let event: HttpEvent =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(event.trigger(), trigger, "{file}");
        event
            .into_request(false)
            .unwrap_or_else(|e| panic!("{file}: {}", e.message()));
    }
}
