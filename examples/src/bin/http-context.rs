//! What API Gateway knows about a request beyond HTTP: the stage, the matched route and
//! path parameters, the caller's address, and what the authorizer said (JWT claims,
//! a Lambda authorizer's context). Answers them as JSON, for a REST or an HTTP API.

use ironlambda_http::{Error, Json, Request, RequestContext, RequestExt};
use serde_json::{Value, json};

async fn describe(req: Request) -> Result<Json<Value>, Error> {
    let path_parameters: serde_json::Map<String, Value> = req
        .path_parameters()
        .map(|p| p.iter().map(|(n, v)| (n.to_owned(), v.into())).collect())
        .unwrap_or_default();
    let api = match req.request_context() {
        Some(RequestContext::ApiGatewayRest(c)) => json!({
            "api": "REST",
            "stage": c.stage,
            "route": c.resource_path,
            "caller": c.identity.user_arn,
            "authorizer": c.authorizer,
        }),
        Some(RequestContext::ApiGatewayHttp(c)) => json!({
            "api": "HTTP",
            "stage": c.stage,
            "route": c.route_key,
            // A JWT authorizer puts the token's claims here.
            "authorizer": c.authorizer,
        }),
        Some(RequestContext::FunctionUrl(c)) => {
            json!({ "api": "Function URL", "url_id": c.api_id })
        }
        Some(_) => json!({ "api": "not API Gateway" }),
        None => Value::Null,
    };
    Ok(Json(json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "client_path": req.raw_http_path(),
        "source_ip": req.request_context().and_then(|c| c.source_ip()),
        "path_parameters": path_parameters,
        "request": api,
        "invocation": req.lambda_context().map(|c| c.request_id.as_str()),
    })))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    // Route on the path below the stage: `/items/7`, not `/prod/items/7`.
    ironlambda_http::Adapter::new(describe)
        .strip_stage(true)
        .run()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironlambda_http::HttpEvent;

    #[tokio::test]
    async fn an_http_api_request_shows_its_stage_route_claims_and_caller() {
        let event: HttpEvent = serde_json::from_value(json!({
            "version": "2.0",
            "routeKey": "GET /items/{id}",
            "rawPath": "/prod/items/7",
            "rawQueryString": "",
            "headers": {"host": "api.example.com"},
            "pathParameters": {"id": "7"},
            "requestContext": {
                "apiId": "xyz789", "stage": "prod", "routeKey": "GET /items/{id}",
                "requestId": "r-1", "domainName": "api.example.com",
                "authorizer": {"jwt": {"claims": {"sub": "user-42"}}},
                "http": {"method": "GET", "path": "/prod/items/7", "sourceIp": "198.51.100.4"}
            },
            "isBase64Encoded": false
        }))
        .unwrap();
        let Json(answer) = describe(event.into_request(true).unwrap()).await.unwrap();
        assert_eq!(answer["path"], "/items/7");
        assert_eq!(answer["client_path"], "/prod/items/7");
        assert_eq!(answer["source_ip"], "198.51.100.4");
        assert_eq!(answer["path_parameters"]["id"], "7");
        assert_eq!(answer["request"]["stage"], "prod");
        assert_eq!(
            answer["request"]["authorizer"]["jwt"]["claims"]["sub"],
            "user-42"
        );
    }
}
