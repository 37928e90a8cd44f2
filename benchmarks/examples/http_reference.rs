//! The HTTP benchmark function on the reference runtime: the same axum `Router` behind
//! `lambda_http`, written as its documentation shows.

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
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    lambda_http::run(router()).await
}
