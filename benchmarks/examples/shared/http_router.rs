//! The axum `Router` both HTTP benchmark functions serve (included by `http_ironlambda.rs`
//! and `http_reference.rs`, so the two differ only in the adapter).

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

pub fn router() -> Router {
    Router::new().route("/items/{id}", get(item))
}
