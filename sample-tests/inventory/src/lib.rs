//! A small inventory service, written as a user's library is: a catalog of items with an
//! LRU of rendered labels, customer sessions in a slab, and a delivery-route graph. It knows
//! nothing of leakhost; `inventory-leaks` is the suite that leak-checks it.
//!
//! Four leaks are planted, each where real code grows one: an audit log nothing trims
//! (`Catalog::lookup`), tags kept per call (`Catalog::tag`), a "seen users" list
//! (`SessionTable::open`), and a memo of every third route (`Router::plan`).

pub mod catalog;
pub mod routes;
pub mod sessions;
