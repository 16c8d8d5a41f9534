//! End-to-end tests: build the sample suites for wasm32-wasip1 and run the real
//! `leakhost` binary on them.

mod harness;

mod bad_modules;
mod cache;
mod cli;
mod failures;
mod faults;
mod hostile;
mod leak;
mod parallel;
mod samplelayers;
