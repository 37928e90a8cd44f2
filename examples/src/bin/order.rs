//! Typed errors: one error enum for the handler, and each variant reports its own
//! `errorType` through `From<OrderError> for Error`.
//!
//! - `{"item":"tea","quantity":"x"}` → `ParseIntError` (the std error inside the variant)
//! - `{"item":"coffee","quantity":"1"}` → `UnknownItem`
//! - `{"item":"tea","quantity":"99"}` → `Function.OutOfStock`
//! - `{"item":"tea","quantity":"2"}` → `{"item":"tea","quantity":2,"total_cents":700}`

use std::num::ParseIntError;

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

/// Everything that can go wrong with an order. It does not implement
/// `std::error::Error`: its conversion into [`Error`] decides what Lambda reports.
#[derive(Debug)]
enum OrderError {
    BadQuantity(ParseIntError),
    UnknownItem(String),
    OutOfStock { item: String, left: u64 },
}

impl From<ParseIntError> for OrderError {
    fn from(e: ParseIntError) -> Self {
        OrderError::BadQuantity(e)
    }
}

/// The one method that names each variant's `errorType`.
impl From<OrderError> for Error {
    fn from(e: OrderError) -> Error {
        match e {
            // The std error's own name and message: `ParseIntError`.
            OrderError::BadQuantity(e) => Error::from(e),
            OrderError::UnknownItem(item) => {
                Error::new("UnknownItem", format!("we do not sell {item:?}"))
            }
            OrderError::OutOfStock { item, left } => {
                Error::new("Function.OutOfStock", format!("only {left} {item} left"))
            }
        }
    }
}

async fn order(event: Order, _ctx: Context) -> Result<Receipt, OrderError> {
    let quantity: u64 = event.quantity.trim().parse()?;
    let &(_, price, stock) = CATALOGUE
        .iter()
        .find(|(name, _, _)| *name == event.item)
        .ok_or_else(|| OrderError::UnknownItem(event.item.clone()))?;
    if quantity > stock {
        return Err(OrderError::OutOfStock {
            item: event.item,
            left: stock,
        });
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
        .map_err(Error::from)
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
