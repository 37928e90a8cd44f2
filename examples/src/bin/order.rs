//! Typed errors: what the caller sees as `errorType` for each way an order can fail.
//!
//! - `{"item":"tea","quantity":"x"}` → `ParseIntError` (a std error through `?`)
//! - `{"item":"coffee","quantity":"1"}` → `UnknownItem` (our own error type)
//! - `{"item":"tea","quantity":"99"}` → `Function.OutOfStock` (an overridden type)
//! - `{"item":"tea","quantity":"2"}` → `{"item":"tea","quantity":2,"total_cents":700}`

use std::fmt;

use ironlambda_runtime::{Context, Error, handler_fn};
use serde::{Deserialize, Serialize};

const CATALOGUE: &[(&str, u64, u64)] = &[("tea", 350, 10), ("scone", 275, 4)];

#[derive(Deserialize)]
struct Order {
    item: String,
    /// Sent as text by the shop's form, so it is parsed here.
    quantity: String,
}

#[derive(Serialize, Debug, PartialEq)]
struct Receipt {
    item: String,
    quantity: u64,
    total_cents: u64,
}

/// Reported with `errorType: "UnknownItem"`.
#[derive(Debug)]
struct UnknownItem(String);

impl fmt::Display for UnknownItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "we do not sell {:?}", self.0)
    }
}

impl std::error::Error for UnknownItem {}

async fn order(event: Order, _ctx: Context) -> Result<Receipt, Error> {
    let quantity: u64 = event.quantity.trim().parse()?;
    let &(_, price, stock) = CATALOGUE
        .iter()
        .find(|(name, _, _)| *name == event.item)
        .ok_or_else(|| UnknownItem(event.item.clone()))?;
    if quantity > stock {
        return Err(Error::new(
            "Function.OutOfStock",
            format!("only {stock} {} left", event.item),
        ));
    }
    Ok(Receipt {
        item: event.item,
        quantity,
        total_cents: quantity * price,
    })
}

fn main() -> Result<(), Error> {
    ironlambda_runtime::start(handler_fn(order))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironlambda_runtime::Config;
    use std::sync::Arc;

    async fn place(item: &str, quantity: &str) -> Result<Receipt, Error> {
        let ctx = Context::new("test", Arc::new(Config::default()));
        order(
            Order {
                item: item.into(),
                quantity: quantity.into(),
            },
            ctx,
        )
        .await
    }

    #[tokio::test]
    async fn error_types_name_what_went_wrong() {
        let cases = [
            ("tea", "x", "ParseIntError", "invalid digit found in string"),
            ("coffee", "1", "UnknownItem", "we do not sell \"coffee\""),
            ("tea", "99", "Function.OutOfStock", "only 10 tea left"),
        ];
        for (item, quantity, error_type, message) in cases {
            let e = place(item, quantity).await.unwrap_err();
            assert_eq!((e.error_type(), e.message()), (error_type, message));
        }
    }

    #[tokio::test]
    async fn a_good_order_is_priced() {
        let r = place("tea", " 2 ").await.unwrap();
        assert_eq!(
            r,
            Receipt {
                item: "tea".into(),
                quantity: 2,
                total_cents: 700
            }
        );
    }
}
