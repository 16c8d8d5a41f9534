//! leakhost: run test suites compiled to wasm32-wasip1 inside a wasmtime sandbox,
//! repeat them, and report memory leaks deterministically.
//!
//! Data flows one way: [`cli`] options → [`plan`] → [`run`] → events → [`report`].
//! [`suite`] loads and checks modules, [`abi`] is the only code that reads guest
//! memory layouts, [`sandbox`] holds the WASI policy and limits, [`leak`] the
//! measurements.

#![warn(missing_docs)]

pub mod abi;
pub mod cli;
pub mod input;
pub mod leak;
pub mod plan;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod suite;
pub mod text;
