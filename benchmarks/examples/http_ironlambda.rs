//! The HTTP benchmark function on ironlambda: an axum `Router` behind `ironlambda-http`,
//! answering an API Gateway HTTP API (payload 2.0) event.

use axum::Router;
use axum::extract::{Path, Query};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Page {
    page: Option<u32>,
}

async fn item(Path(id): Path<u32>, Query(q): Query<Page>) -> axum::Json<Value> {
    axum::Json(json!({ "id": id, "page": q.page.unwrap_or(1), "name": format!("item {id}") }))
}

fn router() -> Router {
    Router::new().route("/items/{id}", get(item))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ironlambda_http::Error> {
    ironlambda_http::run(router()).await
}
