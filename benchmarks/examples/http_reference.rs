//! The HTTP benchmark function on the reference runtime: the same axum `Router` behind
//! `lambda_http`, written as its documentation shows.

#[path = "shared/http_router.rs"]
mod http_router;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    lambda_http::run(http_router::router()).await
}
