//! README and docs/ checked against the binary (issue 27): the flags of every options table exist
//! in `--help` and every flag of `--help` is in README; README's shell blocks run offline; its
//! "Coming from" table says what the binary does; its allowance example parses.
//!
//! Nothing here knows README's sections by position, so sections added later are checked too:
//! an options table is any table with a column headed `option`, `flag` or `to change it`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{cache_dir, cache_key, repo, suite, Run};

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

/// README.md and every docs/*.md, by name.
fn documents() -> Vec<(String, String)> {
    let mut docs = vec![("README.md".to_string(), read("README.md"))];
    let mut names: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    names.sort();
    for path in names {
        docs.push((
            format!("docs/{}", path.file_name().unwrap().to_string_lossy()),
            std::fs::read_to_string(&path).unwrap(),
        ));
    }
    docs
}

/// The cells of a Markdown table row (`\|` is a pipe inside a cell).
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    inner.replace("\\|", "\u{0}").split('|').map(|c| c.trim().replace('\u{0}', "|")).collect()
}

/// Every table of `text`: its header cells and its rows' cells.
fn tables(text: &str) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < lines.len() {
        if lines[i].trim_start().starts_with('|') && lines[i + 1].trim_start().starts_with("|---") {
            let header = cells(lines[i]);
            let mut rows = Vec::new();
            i += 2;
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                rows.push(cells(lines[i]));
                i += 1;
            }
            found.push((header, rows));
        } else {
            i += 1;
        }
    }
    found
}

/// The text of every `code span` in `cell`.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The flag a code span starts with: `--max-memory` of `--max-memory SIZE`, `-N` of `-N n`.
fn flag_of(span: &str) -> Option<String> {
    let word = span.split([' ', '=']).next()?;
    let long = word
        .strip_prefix("--")
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let short = word.len() == 2 && word.starts_with('-') && word.as_bytes()[1].is_ascii_alphabetic();
    // -vv and -vvv are repetitions of -v.
    let repeated = word.len() > 2 && word.strip_prefix('-').is_some_and(|rest| rest.chars().all(|c| c == 'v'));
    match () {
        _ if long || short => Some(word.to_string()),
        _ if repeated => Some("-v".to_string()),
        _ => None,
    }
}

/// Every flag the binary's `--help` of `command` shows.
fn help_flags(command: &[&str]) -> BTreeSet<String> {
    let help = crate::harness::leakhost(command.iter().chain(&["--help"]));
    assert_eq!(help.status, 0, "{help:#?}");
    let mut flags = BTreeSet::new();
    for word in help.stdout.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']') {
        // `--verbose...` (a counted flag), `--shuffle).`: the flag without what follows it.
        let word = word.split('=').next().unwrap_or_default().trim_end_matches(['.', ')', ';', ':']);
        if let Some(flag) = flag_of(word) {
            flags.insert(flag);
        }
    }
    flags
}

fn is_options_table(header: &[String]) -> bool {
    header.iter().any(|h| ["option", "flag", "to change it"].contains(&h.to_lowercase().as_str()))
}

#[test]
fn every_flag_in_an_options_table_is_in_help_and_every_flag_of_run_is_in_readme() {
    let commands: [&[&str]; 5] = [&[], &["run"], &["list"], &["inspect"], &["new"]];
    let known: BTreeSet<String> = commands.iter().flat_map(|c| help_flags(c)).collect();
    let mut documented = BTreeSet::new();
    let mut tables_checked = 0;
    for (name, text) in documents() {
        for (header, rows) in tables(&text).into_iter().filter(|(h, _)| is_options_table(h)) {
            tables_checked += 1;
            for cell in rows.iter().flatten() {
                for flag in code_spans(cell).iter().filter_map(|s| flag_of(s)) {
                    assert!(
                        known.contains(&flag),
                        "{name}: the table headed {header:?} names {flag}, which no --help has"
                    );
                    if name == "README.md" {
                        documented.insert(flag);
                    }
                }
            }
        }
    }
    assert!(tables_checked >= 3, "only {tables_checked} options tables found");
    let readme = read("README.md");
    for flag in help_flags(&["run"]).into_iter().filter(|f| f != "--help" && f != "-h") {
        assert!(documented.contains(&flag), "README's options table lacks `leakhost run {flag}`");
    }
    for flag in help_flags(&["inspect"]).into_iter().chain(help_flags(&["new"])).filter(|f| f != "--help" && f != "-h")
    {
        assert!(
            readme.contains(&format!("`{flag}")) || readme.contains(&format!(" {flag} ")),
            "README never mentions {flag}"
        );
    }
}

/// The `[default: X]` of every flag of `command`'s `--help`.
fn help_defaults(command: &str) -> std::collections::BTreeMap<String, String> {
    let help = crate::harness::leakhost([command, "--help"]).stdout;
    let mut defaults = std::collections::BTreeMap::new();
    let mut current: Vec<String> = Vec::new();
    for line in help.lines().map(str::trim) {
        // A flag's line (`-N, --repeat <N>`), not a possible value's (`- fail: ...`).
        if line.starts_with("--")
            || line.strip_prefix('-').is_some_and(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
        {
            let flags = line.split([' ', ',']).take_while(|w| w.starts_with('-') || w.is_empty());
            current = flags.filter_map(flag_of).collect();
        }
        if let Some(rest) = line.split("[default: ").nth(1) {
            for flag in &current {
                defaults.insert(flag.clone(), rest[..rest.find(']').unwrap()].to_string());
            }
        }
    }
    defaults
}

/// The defaults a row of README's options table states: `(default 1)`, `(defaults 64M, 100 000, 1 000)`.
fn stated_defaults(description: &str) -> Vec<String> {
    let Some(start) = description.find("(default") else { return Vec::new() };
    let text = &description[start + 1..];
    let text = text.strip_prefix("defaults ").or_else(|| text.strip_prefix("default ")).unwrap_or_default();
    let text = &text[..text.find([')', ';']).unwrap_or(text.len())];
    // `60 s` is --help's `60`, `100 000` its `100000`.
    text.split(", ").map(|d| d.strip_suffix(" s").unwrap_or(d).replace([' ', '`'], "")).collect()
}

#[test]
fn the_defaults_readme_states_are_the_ones_help_shows() {
    let defaults = help_defaults("run");
    let (_, rows) = tables(&read("README.md")).into_iter().find(|(h, _)| h[0] == "option").expect("the options table");
    let mut compared = 0;
    for row in rows {
        let flags: Vec<String> = code_spans(&row[0]).iter().filter_map(|s| flag_of(s)).collect();
        let stated = stated_defaults(&row[1]);
        let pairs: Vec<(&String, &String)> = match stated.len() {
            0 => continue,
            1 => flags.iter().map(|f| (f, &stated[0])).collect(),
            _ => flags.iter().zip(&stated).collect(),
        };
        for (flag, stated) in pairs {
            // A default README states that clap does not apply (`--cargo-profile`'s release) is the code's.
            if let Some(shown) = defaults.get(flag) {
                assert_eq!(shown, stated, "README says {flag} defaults to {stated}, --help says {shown}");
                compared += 1;
            }
        }
    }
    assert!(compared >= 10, "only {compared} defaults compared");
}

/// README's "Coming from" table: a spelling it calls the same runs; any other is answered with
/// the table's own words.
#[test]
fn the_coming_from_table_says_what_the_binary_does() {
    let samplelayers = suite("samplelayers");
    let (_, rows) = tables(&read("README.md")).into_iter().find(|(h, _)| h[0] == "you write").expect("the table");
    assert!(rows.len() >= 8, "{rows:?}");
    for row in rows {
        let given = code_spans(&row[0]).remove(0);
        let mut args = vec!["run".to_string(), samplelayers.display().to_string(), "-u".into(), "-N2".into()];
        args.extend(given.split(' ').map(String::from));
        let r = crate::harness::leakhost(&args);
        if row[1].starts_with("same as") {
            assert_eq!(r.status, 0, "{given}: {r:#?}");
            continue;
        }
        assert_eq!(r.status, 2, "{given}: {r:#?}");
        let flag = given.split(' ').next().unwrap();
        assert!(r.stderr.starts_with(&format!("leakhost: error: leakhost has no {flag}; ")), "{given}: {}", r.stderr);
        for span in code_spans(&row[1]) {
            assert!(r.stderr.contains(&span), "{given}: README says `{span}`, leakhost says {}", r.stderr);
        }
    }
}

/// One command line of a shell block, as words (comments dropped, `\` continuations joined).
fn commands(block: &str) -> Vec<Vec<String>> {
    let joined = block.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        let line = line.split(" #").next().unwrap_or_default().trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        for part in line.split("&&") {
            found.push(words(part));
        }
    }
    found
}

/// Shell words: whitespace-separated, with '...' and "..." quoting.
fn words(text: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in text.chars() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => word.push(c),
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        words.push(word);
    }
    words
}

/// README's shell blocks: the indented ones and those fenced as sh, bash or console.
fn shell_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().peekable();
    let mut previous_blank = true;
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```") {
            let mut body = String::new();
            for inner in lines.by_ref() {
                if inner.starts_with("```") {
                    break;
                }
                body.push_str(inner);
                body.push('\n');
            }
            if ["sh", "bash", "console", "shell"].contains(&lang.trim()) {
                blocks.push(body);
            }
            previous_blank = false;
            continue;
        }
        if previous_blank && line.starts_with("    ") && !line.trim().is_empty() {
            let mut body = format!("{}\n", &line[4..]);
            while let Some(next) = lines.peek().filter(|l| l.starts_with("    ") || l.trim().is_empty()) {
                body.push_str(next.get(4..).unwrap_or_default());
                body.push('\n');
                lines.next();
            }
            blocks.push(body);
        }
        previous_blank = line.trim().is_empty();
    }
    blocks
}

/// Runs the binary as README's `leakhost ...` in `dir`, as a user would there.
fn leakhost_in(dir: &Path, args: &[String]) -> Run {
    let target = std::env::temp_dir().join(format!("leakhost-e2e-{}-docs-target", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_leakhost"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env("NO_COLOR", "1")
        .env("LEAKHOST_CACHE_DIR", cache_dir())
        .env("LEAKHOST_CACHE_KEY", cache_key())
        .output()
        .expect("leakhost runs");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What README's commands run in: a fresh directory with the repository's `sample-tests` and a
/// `suite/` as `leakhost new` makes it, the user's suite README's examples name.
fn workspace(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-e2e-{}-docs-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(repo().join("sample-tests"), dir.join("sample-tests")).unwrap();
    let made = leakhost_in(&dir, &["new".into(), "suite".into()]);
    assert_eq!(made.status, 0, "{made:#?}");
    dir
}

/// A synopsis (`leakhost run TARGET... [-N n]`), or a shell glob naming the user's own files, not a
/// command to run here.
fn is_synopsis(words: &[String]) -> bool {
    words.iter().any(|w| w.contains("...") || w.starts_with('[') || w.contains('*'))
}

/// Every `leakhost` command in README's shell blocks runs offline and succeeds, the README's own
/// way of starting leakhost (`cargo run --release -p leakhost --`) included. Other programs
/// (rustup, bash scripts, cargo test) install things or run this very test suite: not run here.
#[test]
fn readmes_commands_run() {
    suite("samplelayers"); // built once by the harness, so README's quick start only checks freshness
    let dir = workspace("blocks");
    let mut ran = Vec::new();
    for block in shell_blocks(&read("README.md")) {
        for mut command in commands(&block) {
            if command.starts_with(&["cargo", "run", "--release", "-p", "leakhost", "--"].map(String::from)) {
                command.drain(..5);
                command[0] = "leakhost".into();
            }
            if command.first().map(String::as_str) != Some("leakhost") || is_synopsis(&command) {
                continue;
            }
            let r = leakhost_in(&dir, &command[1..]);
            assert_eq!(r.status, 0, "README's `{}` failed:\n{r:#?}", command.join(" "));
            ran.push(command.join(" "));
        }
    }
    for expected in ["leakhost run sample-tests/samplelayers -N4 -r", "leakhost new demo", "leakhost run demo -N4 -r"] {
        assert!(ran.iter().any(|c| c == expected), "README's `{expected}` was not run; ran {ran:#?}");
    }
    assert!(ran.iter().any(|c| c.contains("--baseline baseline.json")), "the CI recipe did not run: {ran:#?}");
    assert!(dir.join("report.html").is_file() && dir.join("junit.xml").is_file() && dir.join("events.jsonl").is_file());
}

/// Every `leakhost ...` in a code span parses: a flag README names in prose exists.
#[test]
fn readmes_inline_commands_parse() {
    let dir = workspace("spans");
    let mut checked = 0;
    let readme = read("README.md");
    let prose: String = readme.split("```").step_by(2).collect::<Vec<_>>().join(" ");
    for span in code_spans(&prose.replace('\n', " ")) {
        let command = words(&span);
        // `leakhost run` alone names the command; a command line has more.
        if command.first().map(String::as_str) != Some("leakhost") || command.len() < 3 || is_synopsis(&command) {
            continue;
        }
        // `new` would create files, and inspect --check runs nothing new: parsing is what is checked.
        let r = leakhost_in(&dir, &command[1..]);
        assert!(!r.stderr.contains("(see `leakhost"), "README's `{span}` is not a valid command line: {}", r.stderr);
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} inline commands");
}

/// README's allowance file is one leakhost reads.
#[test]
fn readmes_allowance_example_is_valid() {
    let readme = read("README.md");
    let start = readme.find("```toml\n[[allow]]").expect("the allowance example") + "```toml\n".len();
    let example = &readme[start..start + readme[start..].find("```").unwrap()];
    let file = crate::harness::temp_file("readme-leakhost.toml", example.as_bytes());
    let leak = suite("leak");
    let r = crate::harness::leakhost([
        "run".as_ref(),
        leak.as_os_str(),
        "-N4".as_ref(),
        "-r".as_ref(),
        "--allow".as_ref(),
        file.as_os_str(),
    ]);
    assert_eq!(r.status, 0, "{r:#?}");
    let allowed = format!("allowed by {}:", file.display());
    assert!(r.stdout.contains(&allowed), "{}", r.stdout);
    assert!(r.stdout.contains(": the cache is bounded in production (issue 7)"), "{}", r.stdout);
}
