//! Per-type instance counters and user-named counters.
//!
//! Both live in fixed-size static tables so that counting never allocates and a
//! snapshot never changes what it measures.

use std::any::TypeId;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

/// How many distinct tracked types a suite may have; further types share one overflow row.
pub const MAX_TRACKED_TYPES: usize = 256;
/// How many distinct user counters a suite may have; further counters are not reported.
pub const MAX_USER_COUNTERS: usize = 256;

/// Name of the row that absorbs types beyond [`MAX_TRACKED_TYPES`].
const OVERFLOW_TYPE: &str = "(other tracked types)";

#[derive(Clone, Copy)]
pub(crate) struct TypeRow {
    id: Option<TypeId>,
    pub(crate) name: &'static str,
    pub(crate) instances: i64,
    pub(crate) bytes: i64,
}

impl TypeRow {
    const EMPTY: TypeRow = TypeRow { id: None, name: "", instances: 0, bytes: 0 };
}

pub(crate) struct TypeTable {
    pub(crate) len: usize,
    pub(crate) rows: [TypeRow; MAX_TRACKED_TYPES],
}

pub(crate) static TYPES: Mutex<TypeTable> = Mutex::new(TypeTable { len: 0, rows: [TypeRow::EMPTY; MAX_TRACKED_TYPES] });

fn adjust_type<T: 'static>(instances: i64) {
    let id = TypeId::of::<T>();
    let bytes = instances * std::mem::size_of::<T>() as i64;
    let mut table = TYPES.lock().unwrap_or_else(|e| e.into_inner());
    let len = table.len;
    let index = match table.rows[..len].iter().position(|row| row.id == Some(id)) {
        Some(i) => i,
        None if len < MAX_TRACKED_TYPES - 1 => {
            table.rows[len] = TypeRow { id: Some(id), name: std::any::type_name::<T>(), instances: 0, bytes: 0 };
            table.len += 1;
            len
        }
        None => {
            let last = MAX_TRACKED_TYPES - 1;
            if table.len == last {
                table.rows[last] = TypeRow { id: None, name: OVERFLOW_TYPE, instances: 0, bytes: 0 };
                table.len += 1;
            }
            last
        }
    };
    table.rows[index].instances += instances;
    table.rows[index].bytes += bytes;
}

/// A value whose live instances are counted under its type's name.
///
/// Wrap a value in `Tracked::new` and leakhost reports, per iteration, how many
/// instances of that type (and how many bytes of them) are still alive.
pub struct Tracked<T: 'static> {
    value: T,
}

impl<T: 'static> Tracked<T> {
    /// Wraps and counts one instance of `T`.
    pub fn new(value: T) -> Self {
        adjust_type::<T>(1);
        Tracked { value }
    }

    /// Unwraps the value; it is no longer counted.
    pub fn into_inner(self) -> T {
        let this = std::mem::ManuallyDrop::new(self);
        adjust_type::<T>(-1);
        // SAFETY: `this` is never dropped, so the value is moved out exactly once.
        unsafe { std::ptr::read(&this.value) }
    }
}

impl<T: 'static> Drop for Tracked<T> {
    fn drop(&mut self) {
        adjust_type::<T>(-1);
    }
}

impl<T: Clone + 'static> Clone for Tracked<T> {
    fn clone(&self) -> Self {
        Tracked::new(self.value.clone())
    }
}

impl<T: 'static> Deref for Tracked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: 'static> DerefMut for Tracked<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

impl<T: std::fmt::Debug + 'static> std::fmt::Debug for Tracked<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value.fmt(f)
    }
}

/// A named counter a suite raises and lowers itself (open connections, cache entries).
///
/// ```
/// use leakhost_guest::Counter;
/// static OPEN_CONNECTIONS: Counter = Counter::new("open connections");
/// OPEN_CONNECTIONS.add(1);
/// OPEN_CONNECTIONS.add(-1);
/// assert_eq!(OPEN_CONNECTIONS.get(), 0);
/// ```
pub struct Counter {
    name: &'static str,
    value: AtomicI64,
    registered: AtomicBool,
}

pub(crate) struct CounterTable {
    pub(crate) len: usize,
    pub(crate) rows: [Option<&'static Counter>; MAX_USER_COUNTERS],
}

pub(crate) static USER_COUNTERS: Mutex<CounterTable> =
    Mutex::new(CounterTable { len: 0, rows: [None; MAX_USER_COUNTERS] });

impl Counter {
    /// A counter at zero; it appears in reports once it is first changed.
    pub const fn new(name: &'static str) -> Self {
        Counter { name, value: AtomicI64::new(0), registered: AtomicBool::new(false) }
    }

    /// Adds `delta` (which may be negative).
    pub fn add(&'static self, delta: i64) {
        if !self.registered.swap(true, Ordering::Relaxed) {
            let mut table = USER_COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
            if table.len < MAX_USER_COUNTERS {
                let len = table.len;
                table.rows[len] = Some(self);
                table.len += 1;
            }
        }
        self.value.fetch_add(delta, Ordering::Relaxed);
    }

    /// Adds one.
    pub fn increment(&'static self) {
        self.add(1);
    }

    /// Subtracts one.
    pub fn decrement(&'static self) {
        self.add(-1);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }

    /// The name reported for this counter.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Probe;

    fn row_of<T: 'static>() -> Option<(i64, i64)> {
        let table = TYPES.lock().unwrap();
        table.rows[..table.len]
            .iter()
            .find(|row| row.id == Some(TypeId::of::<T>()))
            .map(|row| (row.instances, row.bytes))
    }

    #[test]
    fn tracked_counts_live_instances_and_bytes() {
        let a = Tracked::new([0u64; 4]);
        let b = a.clone();
        assert_eq!(row_of::<[u64; 4]>(), Some((2, 64)));
        drop(a);
        let inner = b.into_inner();
        assert_eq!(inner, [0; 4]);
        assert_eq!(row_of::<[u64; 4]>(), Some((0, 0)));
        let _p = Tracked::new(Probe);
        assert_eq!(row_of::<Probe>(), Some((1, 0)));
    }

    #[test]
    fn counters_register_on_first_change() {
        static C: Counter = Counter::new("cache entries");
        C.increment();
        C.increment();
        C.decrement();
        assert_eq!(C.get(), 1);
        let table = USER_COUNTERS.lock().unwrap();
        assert!(table.rows[..table.len].iter().flatten().any(|c| c.name() == "cache entries"));
    }
}
