//! The trigger's request context, typed: what API Gateway, an ALB or a Function URL says
//! about a request beyond the HTTP message (who called, through which API and stage, from
//! which address). A request carries it as an extension; read it with
//! [`RequestExt::request_context`](crate::RequestExt::request_context).

use serde::Deserialize;

/// Which service sent the event, and so which response shape it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// API Gateway REST API (payload format 1.0).
    ApiGatewayRest,
    /// API Gateway HTTP API (payload format 2.0).
    ApiGatewayHttp,
    /// A Function URL (payload format 2.0, `*.lambda-url.*` domain).
    FunctionUrl,
    /// An Application Load Balancer target group; `multi_value` when the target group has
    /// multi-value headers on (the response must then use them too).
    Alb {
        /// Whether the target group sends (and expects) `multiValueHeaders`.
        multi_value: bool,
    },
    /// API Gateway WebSocket API.
    WebSocket,
}

/// The request context of the trigger that sent the event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RequestContext {
    /// API Gateway REST API.
    ApiGatewayRest(ApiGatewayRestContext),
    /// API Gateway HTTP API.
    ApiGatewayHttp(ApiGatewayHttpContext),
    /// A Function URL: the HTTP API's shape, from a `lambda-url` domain.
    FunctionUrl(ApiGatewayHttpContext),
    /// An Application Load Balancer.
    Alb(AlbContext),
    /// API Gateway WebSocket API.
    WebSocket(WebSocketContext),
}

impl RequestContext {
    /// The client's address, as the trigger saw it (ALB events do not carry one: read
    /// `x-forwarded-for`).
    pub fn source_ip(&self) -> Option<&str> {
        match self {
            RequestContext::ApiGatewayRest(c) => c.identity.source_ip.as_deref(),
            RequestContext::ApiGatewayHttp(c) | RequestContext::FunctionUrl(c) => {
                c.http.source_ip.as_deref()
            }
            RequestContext::WebSocket(c) => c.identity.source_ip.as_deref(),
            RequestContext::Alb(_) => None,
        }
    }

    /// The trigger's own request id (not the Lambda invocation's), when it has one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            RequestContext::ApiGatewayRest(c) => Some(&c.request_id),
            RequestContext::ApiGatewayHttp(c) | RequestContext::FunctionUrl(c) => {
                Some(&c.request_id)
            }
            RequestContext::WebSocket(c) => Some(&c.request_id),
            RequestContext::Alb(_) => None,
        }
    }
}

/// An API Gateway REST API request context (`requestContext` of payload format 1.0).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiGatewayRestContext {
    /// The AWS account that owns the API.
    pub account_id: String,
    /// The API's id.
    pub api_id: String,
    /// API Gateway's id of this request.
    pub request_id: String,
    /// API Gateway's extended request id.
    pub extended_request_id: Option<String>,
    /// The stage the request came through (`Prod`).
    pub stage: String,
    /// The matched resource template (`/hello/{name}`).
    pub resource_path: Option<String>,
    /// The path as the client requested it, stage included (`/Prod/hello/ada`).
    pub path: Option<String>,
    /// The API's domain name.
    pub domain_name: Option<String>,
    /// When the request arrived, milliseconds since the epoch.
    pub request_time_epoch: Option<i64>,
    /// Who called.
    pub identity: Identity,
    /// What the authorizer (Lambda, Cognito, IAM) returned, as it returned it.
    pub authorizer: Option<serde_json::Value>,
}

/// The caller of a REST or WebSocket API request (`requestContext.identity`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[non_exhaustive]
pub struct Identity {
    /// The client's IP address.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The IAM user or role ARN, for IAM-authorized requests.
    pub user_arn: Option<String>,
    /// The Cognito identity id, for Cognito-authorized requests.
    pub cognito_identity_id: Option<String>,
    /// The Cognito identity pool id.
    pub cognito_identity_pool_id: Option<String>,
    /// The API key's id, for requests that sent one.
    pub api_key_id: Option<String>,
}

/// An API Gateway HTTP API or Function URL request context (payload format 2.0).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiGatewayHttpContext {
    /// The AWS account that owns the API (or the function).
    pub account_id: String,
    /// The API's id, or the Function URL's id.
    pub api_id: String,
    /// The trigger's id of this request.
    pub request_id: String,
    /// The matched route (`GET /hello/{name}`), `$default` for a Function URL.
    pub route_key: String,
    /// The stage, `$default` unless the API has named stages.
    pub stage: String,
    /// The domain the client called.
    pub domain_name: Option<String>,
    /// The first label of that domain.
    pub domain_prefix: Option<String>,
    /// When the request arrived, milliseconds since the epoch.
    pub time_epoch: Option<i64>,
    /// The HTTP request line and client.
    pub http: HttpDescription,
    /// What the authorizer (JWT, Lambda, IAM) returned, as it returned it.
    pub authorizer: Option<serde_json::Value>,
    /// Mutual TLS details, when the API requires client certificates.
    pub authentication: Option<serde_json::Value>,
}

/// `requestContext.http` of payload format 2.0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[non_exhaustive]
pub struct HttpDescription {
    /// The HTTP method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// The protocol (`HTTP/1.1`).
    pub protocol: Option<String>,
    /// The client's IP address.
    pub source_ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

/// An Application Load Balancer request context.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AlbContext {
    /// The target group that routed the request.
    pub target_group_arn: String,
}

/// An API Gateway WebSocket API request context.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebSocketContext {
    /// The connection's id: what `@connections` calls take to reply to this client.
    pub connection_id: String,
    /// `$connect`, `$disconnect`, `$default` or a custom route.
    pub route_key: String,
    /// `CONNECT`, `MESSAGE` or `DISCONNECT`.
    pub event_type: String,
    /// The message's id, for `MESSAGE` events.
    pub message_id: Option<String>,
    /// The API's id.
    pub api_id: String,
    /// The stage.
    pub stage: String,
    /// API Gateway's id of this request.
    pub request_id: String,
    /// The API's domain name.
    pub domain_name: Option<String>,
    /// When the connection was made, milliseconds since the epoch.
    pub connected_at: Option<i64>,
    /// Who called.
    pub identity: Identity,
    /// What the authorizer returned at `$connect`.
    pub authorizer: Option<serde_json::Value>,
}
