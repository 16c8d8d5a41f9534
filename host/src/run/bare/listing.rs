//! What a libtest binary says its tests are: its `--list` output, as JSON lines when its
//! libtest has them (`--format=json -Zunstable-options`, which `RUSTC_BOOTSTRAP=1`
//! allows on a stable toolchain) and as `--format=terse` lines otherwise.

use std::collections::HashSet;

/// One listed test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its path in its crate, as libtest names it (`tests::place_and_cancel`).
    pub name: String,
    /// `#[ignore]`, with its reason when it gave one.
    pub ignored: Option<String>,
    /// `#[should_panic]`: libtest ignores these on wasm32 (panic=abort), and so does leakhost.
    pub should_panic: bool,
}

/// The listings that decide it all, by the arguments that produce them (after the
/// program's name). JSON first; `exclude` leaves out the `#[should_panic]` tests.
pub const JSON_ALL: &[&str] = &["--list", "--format=json", "-Zunstable-options"];
/// [`JSON_ALL`] without `#[should_panic]` tests.
pub const JSON_NO_SHOULD_PANIC: &[&str] = &["--list", "--format=json", "-Zunstable-options", "--exclude-should-panic"];
/// Every test, one `NAME: test` line each (stable libtest).
pub const TERSE_ALL: &[&str] = &["--list", "--format=terse"];
/// The `#[ignore]`d tests, as [`TERSE_ALL`].
pub const TERSE_IGNORED: &[&str] = &["--list", "--format=terse", "--ignored"];

/// The tests of a JSON listing (`discovered` events), in order; `None` when the
/// output is not one (an older libtest answers with an error instead).
pub fn parse_json(output: &str) -> Option<Vec<Listed>> {
    /// One line of the listing; other fields are not read.
    #[derive(serde::Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        event: String,
        name: Option<String>,
        #[serde(default)]
        ignore: bool,
        #[serde(default)]
        ignore_message: String,
    }
    let mut tests = Vec::new();
    let mut any = false;
    for line in output.lines().filter(|l| l.starts_with('{')) {
        let Ok(event) = serde_json::from_str::<Event>(line) else { continue };
        any = true;
        if let (true, Some(name)) = (event.kind == "test" && event.event == "discovered", event.name) {
            tests.push(Listed { name, ignored: event.ignore.then_some(event.ignore_message), should_panic: false });
        }
    }
    any.then_some(tests)
}

/// The names of a terse listing (`NAME: test`; benchmarks are left out), in order.
pub fn parse_terse(output: &str) -> Vec<String> {
    output.lines().filter_map(|line| line.strip_suffix(": test")).map(str::to_string).collect()
}

/// Marks the tests of `all` that a listing without `#[should_panic]` tests lacks.
pub fn mark_should_panic(all: &mut [Listed], without: &[Listed]) {
    let kept: HashSet<&str> = without.iter().map(|t| t.name.as_str()).collect();
    for test in all {
        test.should_panic = !kept.contains(test.name.as_str());
    }
}

/// The tests of the terse listings of all tests and of the ignored ones.
pub fn from_terse(all: &str, ignored: &str) -> Vec<Listed> {
    let ignored: HashSet<String> = parse_terse(ignored).into_iter().collect();
    parse_terse(all)
        .into_iter()
        .map(|name| Listed { ignored: ignored.contains(&name).then(String::new), name, should_panic: false })
        .collect()
}

/// The crate a binary's test functions are in: the one that most listed tests resolve
/// to, as `CRATE::NAME` among `paths` (its functions' paths). Ties go to the first crate
/// in name order, so the choice never depends on hashing.
pub fn crate_of<'p>(tests: &[Listed], paths: impl Iterator<Item = &'p str>) -> Option<String> {
    let names: HashSet<&str> = tests.iter().map(|t| t.name.as_str()).collect();
    let mut votes: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for path in paths {
        if let Some((krate, rest)) = path.split_once("::") {
            if names.contains(rest) {
                *votes.entry(krate).or_default() += 1;
            }
        }
    }
    let best = votes.values().copied().max()?;
    votes.into_iter().find(|(_, n)| *n == best).map(|(k, _)| k.to_string())
}

/// The message of a panic that a test printed before it trapped: `panicked at
/// FILE:LINE:COL:` and the message after it, without libtest's backtrace note.
pub fn panic_message(output: &str) -> Option<String> {
    let at = output.rfind("panicked at ")?;
    let text = &output[at..];
    let end = text.find("\nnote: ").unwrap_or(text.len());
    let message = text[..end].trim_end();
    // `panicked at src/lib.rs:1:2:` then the message on the next lines.
    Some(match message.split_once(":\n") {
        Some((location, rest)) => format!("{location}: {rest}"),
        None => message.to_string(),
    })
}

/// The error a `Result` test returned, as libtest's `Termination::report` prints it
/// (`Error: ` and its `Debug` text, the last thing the call wrote).
pub fn error_text(output: &str) -> Option<String> {
    let at = if output.starts_with("Error: ") { Some(0) } else { output.rfind("\nError: ").map(|i| i + 1) }?;
    Some(output[at..].trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"{ "type": "suite", "event": "discovery" }
{ "type": "test", "event": "discovered", "name": "tests::a", "ignore": false, "ignore_message": "" }
{ "type": "test", "event": "discovered", "name": "tests::net", "ignore": true, "ignore_message": "needs network" }
{ "type": "test", "event": "discovered", "name": "tests::should", "ignore": false, "ignore_message": "" }
{ "type": "suite", "event": "completed", "tests": 3, "benchmarks": 0, "total": 3, "ignored": 1 }"#;

    #[test]
    fn a_json_listing_gives_names_ignores_and_should_panics() {
        let mut all = parse_json(JSON).unwrap();
        let without: Vec<Listed> = all.iter().filter(|t| t.name != "tests::should").cloned().collect();
        mark_should_panic(&mut all, &without);
        assert_eq!(all[1].ignored.as_deref(), Some("needs network"));
        assert_eq!(
            all.iter().filter(|t| t.should_panic).map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["tests::should"]
        );
        assert_eq!(parse_json("error: The \"format\" flag ... nightly"), None);
    }

    #[test]
    fn a_terse_listing_gives_names_and_ignores() {
        let all = "tests::a: test\ntests::b: test\nbench::c: bench\n\n";
        let tests = from_terse(all, "tests::b: test\n");
        assert_eq!(tests.len(), 2);
        assert_eq!(tests[1].ignored.as_deref(), Some(""));
    }

    #[test]
    fn the_crate_is_the_one_most_tests_resolve_to() {
        let tests: Vec<Listed> = ["tests::a", "tests::b"]
            .map(|name| Listed { name: name.into(), ignored: None, should_panic: false })
            .to_vec();
        let paths = ["dep::tests::a", "mine::tests::a", "mine::tests::b", "mine::x::tests::a"];
        assert_eq!(crate_of(&tests, paths.into_iter()).as_deref(), Some("mine"));
        assert_eq!(crate_of(&tests, std::iter::empty()), None);
    }

    #[test]
    fn panic_and_error_texts_are_cut_from_the_output() {
        let out = "log line\n\nthread '<unnamed>' panicked at src/lib.rs:62:24:\ncalled `Result::unwrap()` on an `Err` value: \"boom\"\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            panic_message(out).unwrap(),
            "panicked at src/lib.rs:62:24: called `Result::unwrap()` on an `Err` value: \"boom\""
        );
        assert_eq!(panic_message("nothing"), None);
        assert_eq!(error_text("printed\nError: BadQty(0)\n").unwrap(), "Error: BadQty(0)");
        assert_eq!(error_text("Error: \"no good\"\n").unwrap(), "Error: \"no good\"");
        assert_eq!(error_text("fine"), None);
    }
}
