//! Items by slab key, labels rendered once and kept in a bounded LRU, and an audit log.

use std::num::NonZeroUsize;

use bytes::Bytes;
use lru::LruCache;
use slab::Slab;

/// One item on sale.
pub struct Item {
    /// Its stock-keeping unit.
    pub sku: u64,
    /// What it is called.
    pub name: String,
}

/// The catalog.
pub struct Catalog {
    items: Slab<Item>,
    /// Rendered labels of the hottest 16 items.
    labels: LruCache<u64, String>,
    /// Every lookup, for the auditors. Nothing ever trims it: the planted leak.
    audit: Vec<Bytes>,
    /// Tags given to items; kept for ever: the second planted leak.
    tags: Vec<(u64, String)>,
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new()
    }
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        let capacity = NonZeroUsize::new(16).expect("16 is not zero");
        Catalog { items: Slab::with_capacity(64), labels: LruCache::new(capacity), audit: Vec::new(), tags: Vec::new() }
    }

    /// Adds an item; returns its key.
    pub fn add(&mut self, sku: u64, name: &str) -> usize {
        self.items.insert(Item { sku, name: name.to_string() })
    }

    /// Removes the item at `key`.
    pub fn remove(&mut self, key: usize) -> Option<Item> {
        self.items.try_remove(key)
    }

    /// How many items there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item with `sku`, noted in the audit log.
    pub fn lookup(&mut self, sku: u64) -> Option<&Item> {
        self.audit.push(Bytes::from(format!("lookup sku={sku:08}")));
        self.items.iter().map(|(_, item)| item).find(|item| item.sku == sku)
    }

    /// The printed label of `sku`, rendered once while it stays among the hottest 16.
    pub fn label(&mut self, sku: u64) -> &str {
        if !self.labels.contains(&sku) {
            self.labels.put(sku, format!("SKU-{sku:08}"));
        }
        self.labels.get(&sku).map_or("", String::as_str)
    }

    /// Tags an item.
    pub fn tag<S: Into<String>>(&mut self, sku: u64, tag: S) {
        self.tags.push((sku, tag.into()));
    }
}
