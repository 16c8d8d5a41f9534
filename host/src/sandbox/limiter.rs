//! The per-instance resource limiter: linear memory and table elements against
//! `--max-memory`, and the instance-wide table element cap.

use super::LimitExceeded;

/// Most table elements an instance may have, over all its tables.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;
/// Host bytes one table element costs (a function reference is a pointer), counted
/// against `--max-memory` with the linear memory.
pub const TABLE_ELEMENT_BYTES: usize = 8;

/// Holds one instance to `--max-memory`, counting its linear memory and the elements
/// of all its tables together: a table is host memory too.
#[derive(Debug, Default)]
pub(super) struct Limiter {
    max_memory: usize,
    memory_bytes: usize,
    table_elements: usize,
    /// Elements granted to a growth that may still fail, given back if it does.
    pending_elements: usize,
    /// Bytes granted to a memory growth that may still fail.
    pending_memory: usize,
}

impl Limiter {
    pub(super) fn new(max_memory: usize) -> Self {
        Limiter { max_memory, ..Limiter::default() }
    }

    fn total(&self, memory_bytes: usize, table_elements: usize) -> usize {
        memory_bytes.saturating_add(table_elements.saturating_mul(TABLE_ELEMENT_BYTES))
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // Failing loudly names the limit; a quiet `false` would surface as an
        // anonymous allocation-failure abort in the guest.
        if self.total(desired, self.table_elements) > self.max_memory {
            return Err(wasmtime::Error::new(LimitExceeded::Memory(self.max_memory)));
        }
        self.pending_memory = desired.saturating_sub(current);
        self.memory_bytes = self.memory_bytes.saturating_add(self.pending_memory);
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_bytes = self.memory_bytes.saturating_sub(std::mem::take(&mut self.pending_memory));
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let added = desired.saturating_sub(current);
        let elements = self.table_elements.saturating_add(added);
        if elements > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::Error::new(LimitExceeded::Table(MAX_TABLE_ELEMENTS)));
        }
        if self.total(self.memory_bytes, elements) > self.max_memory {
            return Err(wasmtime::Error::new(LimitExceeded::Memory(self.max_memory)));
        }
        self.pending_elements = added;
        self.table_elements = elements;
        Ok(true)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.table_elements = self.table_elements.saturating_sub(std::mem::take(&mut self.pending_elements));
        Ok(())
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_memory_share_one_limit_per_instance() {
        use wasmtime::ResourceLimiter;
        let mut limiter = Limiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 512 << 10, None).unwrap());
        // 512 KiB of memory leaves room for 65,536 elements of 8 bytes, over any tables.
        assert!(limiter.table_growing(0, 32_768, None).unwrap());
        assert!(limiter.table_growing(0, 32_768, None).unwrap());
        let err = limiter.table_growing(0, 1, None).unwrap_err();
        assert_eq!(err.downcast_ref::<LimitExceeded>(), Some(&LimitExceeded::Memory(1 << 20)));
        assert!(limiter.memory_growing(512 << 10, (512 << 10) + 1, None).is_err());
        // A growth that fails after it was granted gives its elements back.
        limiter.table_grow_failed(wasmtime::Error::msg("out of host memory")).unwrap();
        assert!(limiter.table_growing(0, 32_768, None).unwrap());
        let mut small = Limiter::new(usize::MAX);
        assert!(small.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        let err = small.table_growing(0, 1, None).unwrap_err();
        assert_eq!(err.downcast_ref::<LimitExceeded>(), Some(&LimitExceeded::Table(MAX_TABLE_ELEMENTS)));
    }
}
