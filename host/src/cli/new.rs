//! `leakhost new`: a suite package that builds and runs as created.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use thiserror::Error;

use super::{CliError, EXIT_OK};

/// Create a suite package that builds and runs as created.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The directory to create; it must not exist, or be empty.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,

    /// Create a C suite (the C SDK's template) instead of a Rust one.
    #[arg(long)]
    pub c: bool,

    /// The package name; by default the directory's name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// The leakhost-guest SDK to depend on, by path; by default the guest-sdk/ of the checkout
    /// this leakhost was built from.
    #[arg(long, value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
}

/// Why a suite could not be created.
#[derive(Debug, Error)]
pub enum NewError {
    /// The target directory has something in it already.
    #[error("{0}: already exists and is not empty; leakhost new creates a fresh suite directory")]
    NotEmpty(PathBuf),
    /// No valid package name follows from the path.
    #[error(
        "{0:?}: not a valid package name (letters, digits, - and _, starting with a letter); give one with --name"
    )]
    BadName(String),
    /// The SDK to depend on is not where it should be.
    #[error(
        "{0}: not the leakhost-guest SDK (no Cargo.toml naming leakhost-guest); give its directory with --sdk-path DIR"
    )]
    NoSdk(PathBuf),
    /// Writing a file failed.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A template file: its path inside the new package and its text, with `{{name}}` and `{{sdk}}`
/// to fill in.
type Template = (&'static str, &'static str);

const RUST_TEMPLATE: [Template; 3] = [
    ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
    ("src/lib.rs", include_str!("../../templates/rust/src/lib.rs")),
    (".gitignore", include_str!("../../templates/rust/gitignore")),
];

/// The C suite template: a `leakhost-c.toml` naming `suite.c`. The C SDK itself is embedded in
/// leakhost, so a C suite needs no SDK path.
const C_TEMPLATE: [Template; 3] = [
    ("leakhost-c.toml", include_str!("../../templates/c/leakhost-c.toml")),
    ("suite.c", include_str!("../../templates/c/suite.c")),
    (".gitignore", include_str!("../../templates/c/.gitignore")),
];

/// Where the SDK was when this binary was built: a suite made by `new` depends on it by path,
/// since nothing is published yet.
const BUILT_WITH_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// `leakhost new`.
pub fn new(args: &NewArgs) -> Result<ExitCode, CliError> {
    let name = create(args)?;
    println!("Created suite {name} in {}", args.path.display());
    println!("Run it with: leakhost run {} -N4 -r", args.path.display());
    Ok(ExitCode::from(EXIT_OK))
}

/// Writes the package; returns its name.
fn create(args: &NewArgs) -> Result<String, NewError> {
    let template: &[Template] = if args.c { &C_TEMPLATE } else { &RUST_TEMPLATE };
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    if !valid_name(&name) {
        return Err(NewError::BadName(name));
    }
    let sdk = if args.c { PathBuf::new() } else { sdk_dir(args.sdk_path.as_deref())? };
    if std::fs::read_dir(&args.path).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(NewError::NotEmpty(args.path.clone()));
    }
    let sdk = toml_escape(&sdk.to_string_lossy());
    for (file, text) in template {
        let path = args.path.join(file);
        let write_error = |source| NewError::Write { path: path.clone(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error)?;
        }
        let text = text.replace("{{name}}", &name).replace("{{sdk}}", &sdk);
        write_new(&path, &text).map_err(write_error)?;
    }
    Ok(name)
}

/// Cargo's rule for package names, kept to what is safe in a file name and a TOML string.
fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64
}

/// The SDK directory, absolute, checked to hold leakhost-guest's manifest.
fn sdk_dir(given: Option<&Path>) -> Result<PathBuf, NewError> {
    let dir = given.unwrap_or(Path::new(BUILT_WITH_SDK));
    let is_sdk = std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|manifest| manifest.lines().any(|l| l.trim() == "name = \"leakhost-guest\""));
    match dir.canonicalize() {
        Ok(abs) if is_sdk => Ok(abs),
        _ => Err(NewError::NoSdk(dir.to_path_buf())),
    }
}

/// Escapes a path for a TOML basic string.
fn toml_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Creates `path`, never overwriting or following what is already there.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_follow_cargo() {
        assert!(valid_name("demo"));
        assert!(valid_name("my-suite_2"));
        assert!(!valid_name(""));
        assert!(!valid_name("2fast"));
        assert!(!valid_name("a b"));
        assert!(!valid_name("quote\"d"));
    }

    #[test]
    fn paths_are_escaped_for_toml() {
        assert_eq!(toml_escape(r#"C:\suites\"x""#), r#"C:\\suites\\\"x\""#);
    }

    #[test]
    fn the_templates_have_what_a_suite_needs() {
        let [(_, cargo), (_, lib), (_, ignore)] = RUST_TEMPLATE;
        assert!(cargo.contains("crate-type = [\"cdylib\"]"));
        assert!(cargo.contains("leakhost-guest = { path = \"{{sdk}}\" }"));
        assert!(cargo.contains("debug = \"limited\""));
        assert!(lib.contains("leakhost_guest::suite!();"));
        assert!(lib.contains("#[leakhost_guest::test(layer = Words)]"));
        assert!(ignore.contains("/target"));
    }
}
