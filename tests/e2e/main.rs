//! End-to-end tests: build the sample suites for wasm32-wasip1 and run the real
//! `leakhost` binary on them.

mod harness;

mod bad_modules;
mod building;
mod c_sdk;
mod cache;
mod cli;
mod determinism;
mod docs;
mod escaping;
mod events;
mod failures;
mod faults;
mod hardening;
mod hostile;
mod hostile_stacks;
mod html;
mod inventory;
mod leak;
mod libtest;
mod mistakes;
mod new;
mod parallel;
mod policy;
mod reporting;
mod samplelayers;
mod sdk;
mod snapshots;
mod stacks;
mod verdicts;
