//! The HTTP benchmark function on ironlambda: an axum `Router` behind `ironlambda-http`,
//! answering an API Gateway HTTP API (payload 2.0) event.

#[path = "../../examples/shared/http_router.rs"]
mod http_router;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ironlambda_http::Error> {
    ironlambda_http::run(http_router::router()).await
}
