//! The guest side of [leakhost](https://example.invalid/leakhost): what a test suite links in.
//!
//! A suite is a `cdylib` built for `wasm32-wasip1`. It declares layers and tests in
//! one function and hands that function to [`suite!`], which generates every export
//! the host calls (ABI v1, see docs/abi.md). The SDK also installs a counting global
//! allocator and keeps per-type and user-named counters, which is what leakhost's
//! leak reports measure.
//!
//! ```no_run
//! use leakhost_guest::{check_eq, Layer, Suite, TestResult};
//!
//! fn declare(s: &mut Suite) {
//!     s.test("adds", || -> TestResult {
//!         check_eq!(1 + 1, 2);
//!         Ok(())
//!     });
//!     let db = s.layer(Layer::new("app.Database").set_up(|| { /* connect */ }));
//!     s.test_in(db, "queries", || assert!(true));
//! }
//!
//! leakhost_guest::suite!(declare);
//! ```
//!
//! A body that never returns (an endless loop, `std::process::exit`) needs an
//! explicit `|| -> () { ... }`: Rust cannot infer a result type from `!`.
//!
//! A panic aborts the instance (wasm32 is `panic=abort`); the SDK first records the
//! panic's message and location where the host reads them, so a failing
//! `assert_eq!` is reported as a Failure and any other panic as an Error.

#![warn(missing_docs)]

mod alloc;
mod outcome;
mod suite;
mod track;

pub mod abi;
#[doc(hidden)]
pub mod runtime;

pub use alloc::{counts as alloc_counts, AllocCounts, CountingAllocator};
pub use outcome::{IntoTestResult, TestError, TestResult};
pub use suite::{Layer, LayerId, Suite};
pub use track::{Counter, Tracked};

/// Generates the ABI exports for a suite declared by `fn(&mut Suite)`.
///
/// Use it once, at the crate root of a `cdylib`. The exports exist only when
/// building for wasm32, so the crate still type-checks natively.
#[macro_export]
macro_rules! suite {
    ($declare:path) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            // Referencing __wasm_call_ctors here makes wasm-ld build a true reactor:
            // constructors run once, in _initialize, not around every export call.
            unsafe extern "C" {
                fn __wasm_call_ctors();
            }

            #[unsafe(export_name = "_initialize")]
            extern "C" fn leakhost_initialize() {
                unsafe { __wasm_call_ctors() };
                $crate::runtime::initialize($declare);
            }

            #[unsafe(export_name = "leakhost_abi_version")]
            extern "C" fn leakhost_abi_version() -> i32 {
                $crate::runtime::abi_version()
            }

            #[unsafe(export_name = "leakhost_manifest")]
            extern "C" fn leakhost_manifest() -> i32 {
                $crate::runtime::manifest($declare)
            }

            #[unsafe(export_name = "leakhost_status")]
            extern "C" fn leakhost_status() -> i32 {
                $crate::runtime::status()
            }

            #[unsafe(export_name = "leakhost_run_test")]
            extern "C" fn leakhost_run_test(index: i32) -> i32 {
                $crate::runtime::run_test($declare, index)
            }

            #[unsafe(export_name = "leakhost_layer_hook")]
            extern "C" fn leakhost_layer_hook(layer: i32, hook: i32) -> i32 {
                $crate::runtime::layer_hook($declare, layer, hook)
            }

            #[unsafe(export_name = "leakhost_counters")]
            extern "C" fn leakhost_counters() -> i32 {
                $crate::runtime::counters()
            }
        };
    };
}
