//! A small order book: orders live in a [`slab::Slab`], recent quotes in an
//! [`lru::LruCache`], and every cancellation goes to an audit log that is never
//! trimmed, the leak its tests are meant to find. Its tests are ordinary `#[test]`s:
//! `cargo test` runs them natively, `leakhost run` runs its test binary as it is.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;
use slab::Slab;

/// An order: a quantity at a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// How many.
    pub quantity: u64,
    /// At what price, in cents.
    pub price: u64,
}

/// A quantity the book refuses.
#[derive(Debug, PartialEq, Eq)]
pub struct BadQuantity(pub u64);

/// Open orders and the latest quotes.
pub struct Book {
    orders: Slab<Order>,
    quotes: LruCache<String, u64>,
}

/// Every cancellation ever made: grows forever, one entry per cancel.
static AUDIT: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl Book {
    /// An empty book that keeps the latest `quotes` quotes.
    pub fn new(quotes: usize) -> Self {
        let quotes = NonZeroUsize::new(quotes.max(1)).expect("at least one");
        Book { orders: Slab::new(), quotes: LruCache::new(quotes) }
    }

    /// Places an order; refuses a zero quantity.
    pub fn place(&mut self, quantity: u64, price: u64) -> Result<usize, BadQuantity> {
        if quantity == 0 {
            return Err(BadQuantity(quantity));
        }
        Ok(self.orders.insert(Order { quantity, price }))
    }

    /// Cancels an order, and records the cancellation for auditors.
    pub fn cancel(&mut self, id: usize) -> Option<Order> {
        let order = self.orders.try_remove(id)?;
        audit(format!("cancelled {id}: {} at {}", order.quantity, order.price)); // leak: audit
        Some(order)
    }

    /// Records the latest price of `symbol`.
    pub fn quote(&mut self, symbol: &str, price: u64) {
        self.quotes.put(symbol.to_string(), price);
    }

    /// The latest price of `symbol`, if it is still cached.
    pub fn last(&mut self, symbol: &str) -> Option<u64> {
        self.quotes.get(symbol).copied()
    }

    /// Open orders.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether no order is open.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

fn audit(entry: String) {
    AUDIT.lock().unwrap().push(entry);
}

/// Cancellations recorded so far.
pub fn audited() -> usize {
    AUDIT.lock().unwrap().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placing_fills_the_book() {
        let mut book = Book::new(4);
        let ids: Vec<usize> = (1..=3).map(|q| book.place(q, 100).unwrap()).collect();
        assert_eq!(book.len(), 3);
        assert_eq!(ids.len(), 3);
    }

    #[test]
    fn quotes_are_evicted_least_recent_first() {
        let mut book = Book::new(2);
        book.quote("ACME", 10);
        book.quote("INIT", 20);
        book.quote("ZETA", 30);
        assert_eq!(book.last("ACME"), None);
        assert_eq!(book.last("ZETA"), Some(30));
    }

    #[test]
    fn cancelling_is_audited() {
        let mut book = Book::new(2);
        let id = book.place(5, 250).unwrap();
        assert_eq!(book.cancel(id), Some(Order { quantity: 5, price: 250 }));
        assert!(book.is_empty());
        assert!(audited() > 0);
    }

    #[test]
    fn quantities_are_checked() -> Result<(), BadQuantity> {
        let mut book = Book::new(1);
        book.place(7, 99)?;
        Ok(())
    }

    #[test]
    fn a_zero_quantity_is_refused() -> Result<(), BadQuantity> {
        // Fails on purpose: `place` refuses it, and the test returns the error.
        let mut book = Book::new(1);
        book.place(0, 99)?;
        Ok(())
    }

    #[test]
    #[ignore = "needs a market feed"]
    fn replays_the_live_feed() {
        unreachable!("ignored");
    }
}
