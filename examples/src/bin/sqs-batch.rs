//! An SQS consumer that reports partial batch failures: each message's body should be an
//! order (`{"order": 42}`); the messages that are not are named in `batchItemFailures`, so
//! SQS retries only those (the event source mapping needs `ReportBatchItemFailures`).
//!
//! Try it with the sample SQS event: `cargo ironlambda invoke sqs-batch --example sqs`.

use ironlambda_runtime::{Context, Error, handler_fn};
use serde::{Deserialize, Serialize};

/// The parts of an SQS event this function reads (the full shape is in
/// `aws_lambda_events::event::sqs::SqsEvent`).
#[derive(Deserialize)]
struct SqsEvent {
    #[serde(rename = "Records")]
    records: Vec<Message>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    message_id: String,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct Order {
    order: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchResponse {
    batch_item_failures: Vec<ItemFailure>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemFailure {
    item_identifier: String,
}

async fn consume(event: SqsEvent, _ctx: Context) -> Result<BatchResponse, Error> {
    let mut failures = Vec::new();
    for message in event.records {
        match serde_json::from_str::<Order>(&message.body) {
            Ok(order) => tracing::info!("order {} taken", order.order),
            Err(e) => {
                tracing::warn!("message {} is not an order: {e}", message.message_id);
                failures.push(ItemFailure {
                    item_identifier: message.message_id,
                });
            }
        }
    }
    Ok(BatchResponse {
        batch_item_failures: failures,
    })
}

fn main() -> Result<(), Error> {
    ironlambda_runtime::start(handler_fn(consume))
}
