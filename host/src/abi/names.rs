//! Counter names, interned: a snapshot names its rows again every time it is taken,
//! and a suite that reports 16,384 rows of 4 KB names per test cost the host gigabytes
//! when every snapshot kept its own copies. Each distinct name is stored once per run
//! and shared by every snapshot, delta and verdict that mentions it; how many distinct
//! names (and bytes of them) a run may introduce is bounded.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

/// A counter or type name, shared by every snapshot that mentions it.
pub type Name = Arc<str>;

/// Most distinct counter and type names one run may report.
pub const MAX_DISTINCT_NAMES: usize = 1 << 16;
/// Most bytes of distinct counter and type names one run may report.
pub const MAX_DISTINCT_NAME_BYTES: usize = 16 << 20;

/// The distinct names seen so far, with their total size.
#[derive(Debug, Default)]
pub struct NameInterner {
    names: HashSet<Name>,
    bytes: usize,
}

/// Which bound a new name would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternError {
    /// [`MAX_DISTINCT_NAMES`].
    TooManyNames,
    /// [`MAX_DISTINCT_NAME_BYTES`].
    TooManyBytes,
}

impl NameInterner {
    /// The interner shared by the whole process: one leakhost process is one run.
    pub fn global() -> &'static Mutex<NameInterner> {
        static GLOBAL: OnceLock<Mutex<NameInterner>> = OnceLock::new();
        GLOBAL.get_or_init(Mutex::default)
    }

    /// The shared copy of `name`, stored now if it is new and within the bounds.
    pub fn intern(&mut self, name: &str) -> Result<Name, InternError> {
        if let Some(known) = self.names.get(name) {
            return Ok(known.clone());
        }
        if self.names.len() >= MAX_DISTINCT_NAMES {
            return Err(InternError::TooManyNames);
        }
        if self.bytes + name.len() > MAX_DISTINCT_NAME_BYTES {
            return Err(InternError::TooManyBytes);
        }
        let shared: Name = name.into();
        self.bytes += name.len();
        self.names.insert(shared.clone());
        Ok(shared)
    }

    /// How many distinct names are stored.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name is stored.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_stored_once_and_shared() {
        let mut names = NameInterner::default();
        let a = names.intern("alloc::string::String").unwrap();
        let b = names.intern("alloc::string::String").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn distinct_names_are_bounded_by_count_and_bytes() {
        let mut names = NameInterner::default();
        for i in 0..MAX_DISTINCT_NAMES {
            names.intern(&i.to_string()).unwrap();
        }
        assert_eq!(names.intern("one more"), Err(InternError::TooManyNames));
        assert!(names.intern("0").is_ok(), "known names are still found");
        let mut names = NameInterner::default();
        let big = "x".repeat(4096);
        for i in 0..MAX_DISTINCT_NAME_BYTES / 4096 {
            names.intern(&format!("{}{i:08}", &big[8..])).unwrap();
        }
        assert_eq!(names.intern(&format!("{}{:08}", &big[8..], u32::MAX)), Err(InternError::TooManyBytes));
    }
}
