//! End-to-end tests: build the sample suites for wasm32-wasip1 and run the real
//! `leakhost` binary on them.

mod harness;

mod bad_modules;
mod c_sdk;
mod cache;
mod cli;
mod determinism;
mod escaping;
mod events;
mod failures;
mod faults;
mod hostile;
mod html;
mod leak;
mod libtest;
mod new;
mod parallel;
mod policy;
mod reporting;
mod samplelayers;
mod sdk;
mod snapshots;
mod stacks;
mod verdicts;
