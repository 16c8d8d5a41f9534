//! The leak suite of the `inventory` library, written as a user writes one with
//! `leakhost new`: layers with shared state, a per-test hook, real crates underneath (lru,
//! slab, bytes, petgraph), four planted leaks and clean tests beside them.
//!
//! | layer | test | what it does | expected |
//! |---|---|---|---|
//! | `inventory.Catalog` | `test_lookup` | every lookup is audited, and the log is never trimmed | leaks |
//! | | `test_labels` | renders labels of 4 new items per call into an LRU of 16: fills, then churns | clean |
//! | | `test_tag_sale`, `test_tag_new` | tag an item through one generic helper (&str, String) | leak, one stack |
//! | | `test_add_remove` | adds an item and removes it again | clean |
//! | `inventory.Sessions` | (testSetUp) | opens a session per test, remembering the user for ever | leaks, the hook |
//! | | `test_cart`, `test_checkout` | fill a cart the testTearDown closes | clean |
//! | `inventory.Routes` | `test_plan_route` | every third plan is memoised for ever | leaks, every 3 iterations |
//! | | `test_depots` | reads the graph | clean |
//! | `UnitTests` | `test_buffers` | builds and drops a `BytesMut` message | clean |
//!
//! tests/e2e/inventory.rs checks the verdicts and stacks this prints, its determinism
//! with every report flag, and that no report flag changes it.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BufMut;
use inventory::catalog::Catalog;
use inventory::routes::Router;
use inventory::sessions::SessionTable;
use leakhost_guest::{check, check_eq, LayerState, TestError, TestResult};

/// A fresh stock-keeping unit per call.
static NEXT_SKU: AtomicU64 = AtomicU64::new(1000);

fn fresh_sku() -> u64 {
    NEXT_SKU.fetch_add(1, Ordering::Relaxed)
}

/// A catalog of 40 items, shared by its layer's tests.
struct Shop(Catalog);

impl LayerState for Shop {
    const NAME: &'static str = "inventory.Catalog";
    type Bases = ();

    fn set_up() -> Result<Self, TestError> {
        let mut catalog = Catalog::new();
        for sku in 0..40 {
            catalog.add(sku, &format!("item {sku}"));
        }
        Ok(Shop(catalog))
    }
}

#[leakhost_guest::test(layer = Shop)]
fn test_lookup(Shop(catalog): &mut Shop) {
    check!(catalog.lookup(7).is_some_and(|item| item.name == "item 7"));
}

#[leakhost_guest::test(layer = Shop)]
fn test_labels(Shop(catalog): &mut Shop) {
    for _ in 0..4 {
        let sku = fresh_sku();
        check!(catalog.label(sku).ends_with(&sku.to_string()));
    }
}

#[leakhost_guest::test(layer = Shop)]
fn test_tag_sale(Shop(catalog): &mut Shop) {
    catalog.tag(3, "sale");
}

#[leakhost_guest::test(layer = Shop)]
fn test_tag_new(Shop(catalog): &mut Shop) {
    catalog.tag(4, String::from("new!"));
}

#[leakhost_guest::test(layer = Shop)]
fn test_add_remove(Shop(catalog): &mut Shop) {
    let before = catalog.len();
    let key = catalog.add(fresh_sku(), "seasonal");
    check_eq!(catalog.len(), before + 1);
    check!(catalog.remove(key).is_some());
}

/// The session table, with the session of the test running.
struct Sessions {
    table: SessionTable,
    current: Option<usize>,
}

impl LayerState for Sessions {
    const NAME: &'static str = "inventory.Sessions";
    type Bases = ();

    fn set_up() -> Result<Self, TestError> {
        Ok(Sessions { table: SessionTable::default(), current: None })
    }

    fn test_set_up(&mut self) -> TestResult {
        self.current = Some(self.table.open("alice@example.com"));
        Ok(())
    }

    fn test_tear_down(&mut self) -> TestResult {
        if let Some(id) = self.current.take() {
            self.table.close(id);
        }
        Ok(())
    }
}

#[leakhost_guest::test(layer = Sessions)]
fn test_cart(sessions: &mut Sessions) {
    let id = sessions.current.expect("testSetUp opened one");
    let session = sessions.table.get(id).expect("open");
    session.cart.extend([1, 2, 3]);
    check_eq!(session.cart.len(), 3);
}

#[leakhost_guest::test(layer = Sessions)]
fn test_checkout(sessions: &mut Sessions) {
    let id = sessions.current.expect("testSetUp opened one");
    let session = sessions.table.get(id).expect("open");
    check_eq!(session.user, "alice@example.com");
    session.cart.clear();
}

/// A ring of 12 depots.
struct Routes(Router);

impl LayerState for Routes {
    const NAME: &'static str = "inventory.Routes";
    type Bases = ();

    fn set_up() -> Result<Self, TestError> {
        Ok(Routes(Router::ring(12)))
    }
}

#[leakhost_guest::test(layer = Routes)]
fn test_plan_route(Routes(router): &mut Routes) {
    let route = router.plan(0, 6);
    check_eq!(route.first(), Some(&0));
}

#[leakhost_guest::test(layer = Routes)]
fn test_depots(Routes(router): &mut Routes) {
    check_eq!(router.depots(), 12);
}

#[leakhost_guest::test]
fn test_buffers() {
    let mut message = bytes::BytesMut::with_capacity(16);
    message.put_slice(b"order:");
    message.put_u64(fresh_sku());
    let frozen = message.freeze();
    check_eq!(frozen.len(), 14);
}

leakhost_guest::suite!();
