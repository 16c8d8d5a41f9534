//! The `cargo-leakhost` binary: `cargo leakhost [run options]` runs the tests of the
//! package it is started in, as `leakhost run PACKAGE_DIR` does.

fn main() -> std::process::ExitCode {
    leakhost::cli::cargo_main()
}
