//! A command line clap refuses, as one line that says what to do instead: clap's own "did
//! you mean", the spellings users bring from zope.testrunner, libtest, nextest and pytest
//! answered with leakhost's flag, an option given before its command moved after it, and a
//! flag that needs another naming it.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, Command};

/// Flags of other test runners that leakhost spells differently, with what to write instead.
/// Those that mean the same as a leakhost flag are aliases of it instead (`--repeats`,
/// `--nocapture`, `--report-leak`), so they work and need no entry here.
const FOREIGN: &[(&str, &str)] = &[
    ("-n", "to repeat, use -N N (--repeat); to run layers in parallel, -j N (--jobs)"),
    ("--test-threads", "leakhost runs layers in parallel, not tests: use -j N (--jobs)"),
    ("--threads", "leakhost runs layers in parallel: use -j N (--jobs)"),
    ("--exact", "-t is a regular-expression search; to match one name exactly, use -t '^NAME$'"),
    ("--skip", "to leave tests out, negate a pattern: -t '!NAME'"),
    ("-k", "select tests with -t REGEX (a search; a leading ! negates)"),
    ("-E", "select tests with -t REGEX and layers with --layer REGEX"),
    ("--filterset", "select tests with -t REGEX and layers with --layer REGEX"),
    ("-m", "-t matches the whole test name, module path included: -t MODULE"),
    ("--module", "-t matches the whole test name, module path included: -t MODULE"),
    ("--list", "to list the tests, use `leakhost list TARGET` or --list-tests"),
    ("--fail-fast", "to stop at the first failing test, use -x (--stop-on-error)"),
    ("--no-fail-fast", "leakhost runs every test unless -x (--stop-on-error) is given: leave the flag out"),
    ("-s", "to print every test's output, use --show-output"),
    ("--count", "to repeat the tests, use -N N (--repeat)"),
    ("--no-color", "use --color never"),
    ("-c", "for colour, use --color always"),
    ("-C", "to turn colour off, use --color never"),
    ("--release", "package directories are built in release unless --debug or --cargo-profile NAME says otherwise"),
    ("--profile", "to pick the cargo profile a package directory is built with, use --cargo-profile NAME"),
];

/// The one line for a parse error that is not help or version, from the process arguments
/// `argv` (the program name first) that caused it.
pub(super) fn message(command: &Command, error: &clap::Error, argv: &[OsString]) -> String {
    let args: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let sub = args.iter().skip(1).position(|a| command.find_subcommand(a).is_some()).map(|i| i + 1);
    let sub_command = sub.and_then(|i| command.find_subcommand(&args[i]));
    let see = match sub_command {
        Some(c) => format!(" (see `leakhost {} --help`)", c.get_name()),
        None => " (see `leakhost --help`)".to_string(),
    };
    let specific = match error.kind() {
        ErrorKind::UnknownArgument => unknown_argument(command, error, &args, sub),
        ErrorKind::InvalidSubcommand => unknown_command(error),
        ErrorKind::MissingRequiredArgument => sub_command.and_then(|c| missing(c, error, argv)),
        _ => None,
    };
    specific.unwrap_or_else(|| flattened(error)) + &see
}

fn context(error: &clap::Error, kind: ContextKind) -> Option<&ContextValue> {
    error.context().find(|(k, _)| *k == kind).map(|(_, v)| v)
}

fn string(value: Option<&ContextValue>) -> Option<String> {
    match value? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(s) => s.first().cloned(),
        _ => None,
    }
}

fn strings(value: Option<&ContextValue>) -> Vec<String> {
    match value {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(s)) => s.clone(),
        _ => Vec::new(),
    }
}

/// clap's whole message as one line: every line but the usage and the pointer to --help,
/// so its tips ("a similar argument exists") stay.
fn flattened(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .map(|l| l.strip_prefix("tip: ").unwrap_or(l))
        .collect();
    lines.join("; ")
}

/// `--jsn`: clap's suggestion; `--test-threads`: leakhost's way; `leakhost -N4 run ...`: the
/// command line with the option after its command.
fn unknown_argument(command: &Command, error: &clap::Error, args: &[String], sub: Option<usize>) -> Option<String> {
    let flag = string(context(error, ContextKind::InvalidArg))?;
    let name = flag.split('=').next().unwrap_or(&flag);
    if let Some((_, answer)) = FOREIGN.iter().find(|(foreign, _)| *foreign == name) {
        return Some(format!("leakhost has no {name}; {answer}"));
    }
    let at = args.iter().skip(1).position(|a| a.starts_with(name)).map(|i| i + 1);
    if let Some(at) = at.filter(|&at| sub.is_none_or(|sub| at < sub)) {
        if let Some(line) = misplaced(command, args, at, name) {
            return Some(line);
        }
    }
    let suggested = string(context(error, ContextKind::SuggestedArg))?;
    Some(format!("unexpected argument '{flag}'; did you mean '{suggested}'?"))
}

/// An option of a command given before it: the command line that works.
fn misplaced(command: &Command, args: &[String], at: usize, name: &str) -> Option<String> {
    let owners: Vec<&Command> = command.get_subcommands().filter(|c| find_arg(c, name).is_some()).collect();
    let owner = owners.first()?;
    let arg = find_arg(owner, name)?;
    // `-N 4` moves with its value; `-N4` and `--repeat=4` are one word.
    let joined = args[at] != name;
    let moved = if arg.get_action().takes_values() && !joined { at..(at + 2).min(args.len()) } else { at..at + 1 };
    let mut fixed: Vec<&str> = vec!["leakhost"];
    fixed.extend(args.iter().enumerate().skip(1).filter(|(i, _)| !moved.contains(i)).map(|(_, a)| a.as_str()));
    fixed.extend(args[moved].iter().map(String::as_str));
    let names: Vec<String> = owners.iter().map(|c| format!("`leakhost {}`", c.get_name())).collect();
    let has_command = args.iter().skip(1).any(|a| command.find_subcommand(a).is_some());
    let fix = match has_command {
        true => format!("write it after the command: {}", fixed.join(" ")),
        false => format!("write it after the command, e.g. leakhost {} TARGET {}", owner.get_name(), args[at]),
    };
    Some(format!("{name} is an option of {}, not of leakhost itself; {fix}", names.join(" and ")))
}

fn unknown_command(error: &clap::Error) -> Option<String> {
    let given = string(context(error, ContextKind::InvalidSubcommand))?;
    if let Some(suggested) = string(context(error, ContextKind::SuggestedSubcommand)) {
        return Some(format!("unknown command '{given}'; did you mean '{suggested}'?"));
    }
    let path = std::path::Path::new(&given);
    if path.exists() || path.extension().is_some_and(|e| e == "wasm") {
        return Some(format!("unknown command '{given}'; to run it as a suite: leakhost run {given}"));
    }
    Some(format!("unknown command '{given}'; the commands are run, list, inspect and new"))
}

/// `--allow` without `-r`: which flag needs which, found by asking clap of each flag present.
fn missing(command: &Command, error: &clap::Error, argv: &[OsString]) -> Option<String> {
    let missing: Vec<String> = strings(context(error, ContextKind::InvalidArg));
    let first = missing.first()?;
    let Some(needed) = arg_by_usage(command, first) else {
        return Some(format!("`leakhost {}` needs {first}", command.get_name()));
    };
    if needed.is_positional() {
        let name = needed.get_value_names().and_then(|n| n.first()).map_or(first.clone(), |n| n.to_string());
        return Some(format!("`leakhost {}` needs a {name}", command.get_name()));
    }
    let present = given_args(command, argv);
    let needer = requirements(command)
        .into_iter()
        .find(|(flag, need)| need.get_id() == needed.get_id() && present.contains(flag.get_id()))
        .map(|(flag, _)| flag)?;
    Some(format!("{} needs {}", long_name(needer), display(needed)))
}

/// The ids of the arguments the command line gave `command`.
fn given_args(command: &Command, argv: &[OsString]) -> Vec<clap::Id> {
    let start = argv.iter().position(|a| command.get_name() == a).unwrap_or(0);
    let mut lenient = command.clone().ignore_errors(true);
    let Ok(matches) = lenient.try_get_matches_from_mut(&argv[start..]) else {
        return Vec::new();
    };
    let given = |id: &&clap::Id| matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine);
    matches.ids().filter(given).cloned().collect()
}

/// Every `(flag, needed)` pair of `command`: for each of its flags, what clap refuses it
/// without. Asked of clap rather than kept in a second list, so no pair can be left out.
pub(super) fn requirements(command: &Command) -> Vec<(&Arg, &Arg)> {
    let mut built = command.clone();
    built.build();
    let positionals: Vec<String> =
        built.get_positionals().filter(|a| a.is_required_set()).map(|_| "placeholder".to_string()).collect();
    let mut pairs = Vec::new();
    for flag in command.get_arguments().filter(|a| !a.is_positional() && a.get_long().is_some()) {
        let mut line = vec![command.get_name().to_string()];
        line.extend(positionals.iter().cloned());
        line.push(format!("--{}", flag.get_long().unwrap_or_default()));
        if built.get_arguments().find(|a| a.get_id() == flag.get_id()).is_some_and(|a| a.get_action().takes_values()) {
            line.push(probe_value(flag));
        }
        let Err(error) = built.clone().try_get_matches_from(&line) else { continue };
        if error.kind() != ErrorKind::MissingRequiredArgument {
            continue;
        }
        for needed in strings(context(&error, ContextKind::InvalidArg)) {
            if let Some(arg) = arg_by_usage(command, &needed) {
                pairs.push((flag, arg));
            }
        }
    }
    pairs
}

/// A value every flag's parser takes: its first possible value, its default, or 1.
fn probe_value(flag: &Arg) -> String {
    if let Some(value) = flag.get_possible_values().first() {
        return value.get_name().to_string();
    }
    flag.get_default_values().first().map_or("1".to_string(), |v| v.to_string_lossy().into_owned())
}

/// The argument clap names `usage` in an error: `--report-refcounts`, `--json <FILE>`, `<TARGET>...`.
fn arg_by_usage<'c>(command: &'c Command, usage: &str) -> Option<&'c Arg> {
    let word = usage.split(' ').next().unwrap_or(usage);
    if let Some(value_name) = word.strip_prefix('<') {
        let value_name = value_name.trim_end_matches('.').trim_end_matches('>');
        return command.get_positionals().find(|a| {
            a.get_value_names().is_some_and(|n| n.iter().any(|n| n.as_str() == value_name))
                || a.get_id().as_str().eq_ignore_ascii_case(value_name)
        });
    }
    find_arg(command, word)
}

/// The argument `flag` (`--long`, an alias, or `-s`) names in `command`.
fn find_arg<'c>(command: &'c Command, flag: &str) -> Option<&'c Arg> {
    if let Some(long) = flag.strip_prefix("--") {
        let long = long.split('=').next().unwrap_or(long);
        return command.get_arguments().find(|a| {
            a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|aliases| aliases.contains(&long))
        });
    }
    let short = flag.strip_prefix('-')?.chars().next()?;
    command.get_arguments().find(|a| {
        a.get_short() == Some(short) || a.get_all_short_aliases().is_some_and(|aliases| aliases.contains(&short))
    })
}

/// `--allow`: the long name users see in `--help`.
fn long_name(arg: &Arg) -> String {
    match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => arg.get_id().to_string(),
    }
}

/// `-r (--report-refcounts)`: the short form users type, with the long one that says what it is.
fn display(arg: &Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(long)) => format!("-{short} (--{long})"),
        _ => long_name(arg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn line(args: &[&str]) -> String {
        let argv: Vec<OsString> = std::iter::once("leakhost").chain(args.iter().copied()).map(OsString::from).collect();
        let command = super::super::built_command();
        let error = command.clone().try_get_matches_from(&argv).expect_err("a usage error");
        message(&command, &error, &argv)
    }

    #[test]
    fn a_flag_that_needs_another_names_it() {
        assert_eq!(
            line(&["run", "s.wasm", "--allow", "a.toml"]),
            "--allow needs -r (--report-refcounts) (see `leakhost run --help`)"
        );
        assert_eq!(
            line(&["run", "s.wasm", "--fail-on-leak"]),
            "--fail-on-leak needs -r (--report-refcounts) (see `leakhost run --help`)"
        );
        assert_eq!(line(&["run"]), "`leakhost run` needs a TARGET (see `leakhost run --help`)");
    }

    #[test]
    fn descriptions_agree_built_and_unbuilt() {
        let unbuilt = super::super::Cli::command();
        let built = super::super::built_command();
        let mut compared = 0;
        for sub in unbuilt.get_subcommands() {
            let after = built.find_subcommand(sub.get_name()).unwrap();
            assert!(sub.get_about().is_some(), "{} has no description", sub.get_name());
            assert_eq!(
                sub.get_about().map(|a| a.to_string()),
                after.get_about().map(|a| a.to_string()),
                "{}",
                sub.get_name()
            );
            assert!(after.get_arguments().count() > 1, "{} was not built", sub.get_name());
            compared += 1;
        }
        assert_eq!(compared, 5);
    }

    #[test]
    fn every_requirement_is_found_by_asking_clap() {
        let command = super::super::built_command();
        let run = command.find_subcommand("run").unwrap();
        let pairs: Vec<(String, String)> =
            requirements(run).into_iter().map(|(a, b)| (long_name(a), long_name(b))).collect();
        for flag in ["--allow", "--baseline", "--fail-on-leak", "--fail-on-undecided"] {
            assert!(pairs.contains(&(flag.to_string(), "--report-refcounts".to_string())), "{flag}: {pairs:?}");
        }
    }

    /// Every flag of every command, given alone: whenever clap refuses it for want of another,
    /// the line names both. Walks clap's own definitions, so a pair added later is covered.
    #[test]
    fn every_flag_that_needs_another_says_which() {
        let command = super::super::built_command();
        let mut checked = 0;
        for sub in command.get_subcommands() {
            let mut built = sub.clone();
            built.build();
            for flag in built.get_arguments().filter(|a| !a.is_positional() && a.get_long().is_some()) {
                let mut args = vec![sub.get_name().to_string()];
                args.extend(built.get_positionals().filter(|a| a.is_required_set()).map(|_| "s.wasm".to_string()));
                args.push(format!("--{}", flag.get_long().unwrap()));
                if flag.get_action().takes_values() {
                    args.push(probe_value(flag));
                }
                let argv: Vec<OsString> =
                    std::iter::once("leakhost".to_string()).chain(args).map(OsString::from).collect();
                let Err(error) = command.clone().try_get_matches_from(&argv) else { continue };
                if error.kind() != ErrorKind::MissingRequiredArgument {
                    continue;
                }
                let line = message(&command, &error, &argv);
                let expected = format!("--{} needs -", flag.get_long().unwrap());
                assert!(line.starts_with(&expected), "{argv:?}: {line}");
                checked += 1;
            }
        }
        assert!(checked >= 4, "only {checked} flags need another");
    }

    #[test]
    fn misspellings_get_a_suggestion_or_the_leakhost_flag() {
        assert_eq!(
            line(&["run", "s.wasm", "--jsn", "x"]),
            "unexpected argument '--jsn'; did you mean '--json'? (see `leakhost run --help`)"
        );
        assert_eq!(line(&["runn", "s.wasm"]), "unknown command 'runn'; did you mean 'run'? (see `leakhost --help`)");
        assert!(line(&["run", "s.wasm", "-n4"]).starts_with("leakhost has no -n; to repeat, use -N N (--repeat)"));
        assert!(line(&["run", "s.wasm", "--test-threads=2"]).starts_with("leakhost has no --test-threads; "));
    }

    #[test]
    fn an_option_before_its_command_is_moved_after_it() {
        assert_eq!(
            line(&["-N4", "run", "s.wasm"]),
            "-N is an option of `leakhost run`, not of leakhost itself; write it after the command: \
             leakhost run s.wasm -N4 (see `leakhost run --help`)"
        );
        assert_eq!(
            line(&["-t", "x", "list", "s.wasm"]),
            "-t is an option of `leakhost run` and `leakhost list`, not of leakhost itself; write it after the \
             command: leakhost list s.wasm -t x (see `leakhost list --help`)"
        );
    }

    #[test]
    fn other_errors_keep_all_of_clap_in_one_line() {
        let colour = line(&["run", "s.wasm", "--color", "sometimes"]);
        assert!(
            colour
                .starts_with("invalid value 'sometimes' for '--color <WHEN>'; [possible values: auto, always, never]"),
            "{colour}"
        );
    }
}
