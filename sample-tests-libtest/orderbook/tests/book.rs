//! Integration tests: a test binary of their own.

use orderbook::Book;

#[test]
fn an_order_round_trips() {
    let mut book = Book::new(8);
    let id = book.place(3, 120).unwrap();
    assert!(book.cancel(id).is_some());
}

#[test]
fn the_best_price_is_quoted() {
    // Fails on purpose: a panic (wasm32 is panic=abort), reported as a failure.
    let mut book = Book::new(8);
    book.quote("ACME", 101);
    assert_eq!(book.last("ACME"), Some(100), "the quote moved");
}
