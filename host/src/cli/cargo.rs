//! `cargo leakhost [run options]`: the cargo subcommand, which runs the tests of the
//! package it is started in as `leakhost run PACKAGE_DIR` does (`cargo leakhost list`
//! lists them).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command as Process, ExitCode, Stdio};

use clap::error::ErrorKind;
use clap::Parser;

use super::{execute, usage_error, Cli};

/// The `cargo-leakhost` binary's entry point: cargo starts it as `cargo-leakhost
/// leakhost ARGS`.
pub fn cargo_main() -> ExitCode {
    let args = leakhost_args(std::env::args_os().collect());
    match Cli::try_parse_from(&args) {
        Ok(cli) => execute(cli),
        // No target given: the package cargo was started in.
        Err(error) if error.kind() == ErrorKind::MissingRequiredArgument => {
            let mut args = args;
            args.push(package_dir().into_os_string());
            match Cli::try_parse_from(&args) {
                Ok(cli) => execute(cli),
                Err(_) => usage_error(error, &args),
            }
        }
        Err(error) => usage_error(error, &args),
    }
}

/// `leakhost run ARGS` (or `list`) from the arguments cargo passes a subcommand.
fn leakhost_args(raw: Vec<OsString>) -> Vec<OsString> {
    let mut args = raw.into_iter().skip(1).peekable();
    args.next_if(|a| a == "leakhost");
    let command = args.next_if(|a| a == "run" || a == "list").unwrap_or_else(|| "run".into());
    ["leakhost".into(), command].into_iter().chain(args).collect()
}

/// The directory of the package cargo was started in (`cargo locate-project`), else
/// the current directory.
fn package_dir() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Process::new(cargo)
        .args(["locate-project", "--message-format", "plain"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let manifest = out.ok().filter(|o| o.status.success()).and_then(|o| String::from_utf8(o.stdout).ok());
    manifest.and_then(|m| PathBuf::from(m.trim()).parent().map(PathBuf::from)).unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(raw: &[&str]) -> Vec<String> {
        let raw = raw.iter().map(OsString::from).collect();
        leakhost_args(raw).into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn cargo_subcommand_arguments_become_a_run() {
        assert_eq!(args(&["cargo-leakhost", "leakhost", "-N4", "-r"]), ["leakhost", "run", "-N4", "-r"]);
        assert_eq!(args(&["cargo-leakhost", "leakhost", "list", "-t", "x"]), ["leakhost", "list", "-t", "x"]);
        assert_eq!(args(&["cargo-leakhost", "run", "."]), ["leakhost", "run", "."]);
        assert_eq!(args(&["cargo-leakhost"]), ["leakhost", "run"]);
    }
}
