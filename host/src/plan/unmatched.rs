//! A selection that matches no test: a filter with a typo must not pass a CI job by running
//! nothing. What the user asked for is named as they wrote it, with the names nearest to it.

use super::{Partition, Pattern, Plan, Selection};
use crate::abi::Manifest;
use crate::text::GuestText;

/// How many nearest names a hint lists.
const HINTS: usize = 3;

/// Only this much of a name is compared with a pattern: the hint needs the likeness, and the
/// cost stays bounded for any name a guest declares.
const COMPARED_CHARS: usize = 200;

/// A selection that matched no test in any suite, with what would help the user fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NothingSelected {
    /// The selection's flags, as they would be typed (`-t no_such_test --layer Nope`).
    pub filters: String,
    /// When several filters are given, how many tests each selects alone.
    pub alone: Vec<(String, usize)>,
    /// The test names nearest to the `-t` patterns, nearest first.
    pub tests: Vec<GuestText>,
    /// The names of the layers with tests nearest to the `--layer` patterns, nearest first.
    pub layers: Vec<GuestText>,
    /// Without a pattern to compare with: the layers that have tests, with their counts.
    pub layer_counts: Vec<(GuestText, usize)>,
    /// A pattern given to the other flag (`-t LAYER`): the flag meant.
    pub other_flag: Vec<String>,
}

impl NothingSelected {
    /// What matched nothing and the nearest names, without the advice on `--no-tests`.
    pub fn summary(&self) -> String {
        format!("no tests matched {}{}", self.filters, hints(self))
    }
}

impl std::fmt::Display for NothingSelected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; to allow that, add --no-tests=warn or --no-tests=pass", self.summary())
    }
}

impl std::error::Error for NothingSelected {}

/// The hints, with guest names raw: the line is escaped once, where it is printed.
fn hints(n: &NothingSelected) -> String {
    let names = |names: &[GuestText]| names.iter().map(|n| n.raw()).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    if !n.alone.is_empty() {
        let each: Vec<String> = n.alone.iter().map(|(filter, count)| format!("{filter} selects {count}")).collect();
        out.push_str(&format!(" (alone, {})", each.join(", ")));
    }
    for hint in &n.other_flag {
        out.push_str(&format!("; {hint}"));
    }
    if !n.tests.is_empty() {
        out.push_str(&format!("; nearest tests: {}", names(&n.tests)));
    }
    if !n.layers.is_empty() {
        out.push_str(&format!("; nearest layers: {}", names(&n.layers)));
    }
    if !n.layer_counts.is_empty() {
        let counts: Vec<String> = n.layer_counts.iter().map(|(l, c)| format!("{} ({c})", l.raw())).collect();
        out.push_str(&format!("; layers with tests: {}", counts.join(", ")));
    }
    out
}

impl Selection {
    /// `Ok` when `plans` (this selection's plan of each of `manifests`) run at least one test;
    /// otherwise what the selection asked for and the names nearest to it.
    pub fn check(&self, manifests: &[&Manifest], plans: &[Plan]) -> Result<(), Box<NothingSelected>> {
        if plans.iter().any(|p| p.test_count() > 0) {
            return Ok(());
        }
        let everything: Vec<Plan> = manifests.iter().map(|m| Plan::new(m)).collect();
        let filters = self.filters();
        let alone = match filters.len() {
            0 | 1 => Vec::new(),
            _ => filters
                .iter()
                .map(|(flag, only)| (flag.clone(), manifests.iter().map(|m| Plan::select(m, only).test_count()).sum()))
                .collect(),
        };
        let test_names: Vec<&GuestText> = everything.iter().flat_map(|p| p.test_names.iter()).collect();
        let layer_names: Vec<&GuestText> =
            everything.iter().flat_map(|p| p.layers.iter().map(|l| p.graph.name(l.layer))).collect();
        let other_flag = other_flag(self, &test_names, &layer_names);
        // A pattern given to the wrong flag is the whole story; names near it would only distract.
        let (tests, layers) = match other_flag.is_empty() {
            true => (nearest(&self.tests, &test_names), nearest(&self.layers, &layer_names)),
            false => (Vec::new(), Vec::new()),
        };
        let layer_counts = if tests.is_empty() && layers.is_empty() && other_flag.is_empty() {
            let counts =
                everything.iter().flat_map(|p| p.layers.iter().map(|l| (p.graph.name(l.layer).clone(), l.tests.len())));
            counts.take(2 * HINTS).collect()
        } else {
            Vec::new()
        };
        let typed: Vec<String> = filters.into_iter().map(|(flag, _)| flag).collect();
        let filters = if typed.is_empty() { "the suites (they declare no tests)".to_string() } else { typed.join(" ") };
        Err(Box::new(NothingSelected { filters, alone, tests, layers, layer_counts, other_flag }))
    }

    /// Each filter of the selection as typed, with a selection of that filter alone.
    fn filters(&self) -> Vec<(String, Selection)> {
        let mut filters = Vec::new();
        for pattern in &self.tests {
            let only = Selection { tests: vec![pattern.clone()], ..Selection::default() };
            filters.push((format!("-t {}", shell_word(pattern.spec())), only));
        }
        for pattern in &self.layers {
            let only = Selection { layers: vec![pattern.clone()], ..Selection::default() };
            filters.push((format!("--layer {}", shell_word(pattern.spec())), only));
        }
        if self.unit_only {
            filters.push(("-u".to_string(), Selection { unit_only: true, ..Selection::default() }));
        }
        if self.non_unit_only {
            filters.push(("-f".to_string(), Selection { non_unit_only: true, ..Selection::default() }));
        }
        if let Some(part @ Partition { index, count }) = self.partition {
            filters.push((
                format!("--partition {index}/{count}"),
                Selection { partition: Some(part), ..Selection::default() },
            ));
        }
        filters
    }
}

/// The names nearest to the patterns that select (negated ones name what they do not want),
/// nearest first and then in name order. Names that share their first word (`test_x1
/// (module.A)`, `test_x1 (module.B)`) are shown once, so the hints differ.
fn nearest(patterns: &[Pattern], names: &[&GuestText]) -> Vec<GuestText> {
    let wanted: Vec<Vec<char>> = patterns.iter().filter(|p| !p.negated).map(|p| literal(p.spec())).collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut ranked: Vec<(usize, &str)> = names
        .iter()
        .map(|name| {
            let text: Vec<char> = name.raw().chars().take(COMPARED_CHARS).flat_map(char::to_lowercase).collect();
            let distance = wanted.iter().map(|w| substring_distance(w, &text)).min().unwrap_or(usize::MAX);
            (distance, name.raw())
        })
        .collect();
    ranked.sort_unstable();
    let mut shown: Vec<GuestText> = Vec::new();
    for (_, name) in ranked {
        let word = |n: &str| n.split_whitespace().next().unwrap_or_default().to_string();
        if !shown.iter().any(|s| word(s.raw()) == word(name)) {
            shown.push(GuestText::from(name));
        }
        if shown.len() == HINTS {
            break;
        }
    }
    shown
}

/// A `-t` pattern that selects layer names and no test, or a `--layer` pattern that selects
/// test names and no layer: the flag the user meant.
fn other_flag(selection: &Selection, tests: &[&GuestText], layers: &[&GuestText]) -> Vec<String> {
    let selects = |p: &Pattern, names: &[&GuestText]| !p.negated && names.iter().any(|n| p.selects(n.raw()));
    let mut hints = Vec::new();
    for p in selection.tests.iter().filter(|p| !selects(p, tests) && selects(p, layers)) {
        hints.push(format!("-t selects tests, and {} names layers: --layer {0}", shell_word(p.spec())));
    }
    for p in selection.layers.iter().filter(|p| !selects(p, layers) && selects(p, tests)) {
        hints.push(format!("--layer selects layers, and {} names tests: -t {0}", shell_word(p.spec())));
    }
    hints
}

/// What a pattern most likely means as plain text: anchors and escapes dropped, lower case.
fn literal(regex: &str) -> Vec<char> {
    let trimmed = regex.strip_prefix('^').unwrap_or(regex);
    let trimmed = trimmed.strip_suffix('$').unwrap_or(trimmed);
    trimmed.chars().filter(|&c| c != '\\').take(COMPARED_CHARS).flat_map(char::to_lowercase).collect()
}

/// The fewest single-character edits that turn `pattern` into some substring of `text`
/// (Sellers' algorithm): `-t` searches, so a name that contains the pattern is at distance 0.
fn substring_distance(pattern: &[char], text: &[char]) -> usize {
    // previous[j]: the distance of the pattern's prefix so far to a substring ending at text[j].
    let mut previous = vec![0usize; text.len() + 1];
    for (i, &p) in pattern.iter().enumerate() {
        let mut current = vec![i + 1; text.len() + 1];
        for (j, &t) in text.iter().enumerate() {
            let substitute = previous[j] + usize::from(p != t);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous.into_iter().min().unwrap_or(0)
}

/// `word` as a POSIX shell would need it typed: bare when it is plain, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{LayerDecl, LayerFlags, TestDecl};

    fn manifest() -> Manifest {
        let layer = |name: &str| LayerDecl { name: name.into(), bases: vec![], flags: LayerFlags::default() };
        let test = |name: &str, layer| TestDecl { name: name.into(), layer };
        Manifest {
            layers: vec![layer("app.Database"), layer("app.Cache")],
            tests: vec![
                test("test_adds", None),
                test("test_queries", Some(0)),
                test("test_query_plan", Some(0)),
                test("test_evicts", Some(1)),
            ],
        }
    }

    fn check(f: impl FnOnce(&mut Selection)) -> Result<(), Box<NothingSelected>> {
        let mut selection = Selection::default();
        f(&mut selection);
        let m = manifest();
        let plan = Plan::select(&m, &selection);
        selection.check(&[&m], &[plan])
    }

    fn pattern(spec: &str) -> Pattern {
        spec.parse().unwrap()
    }

    #[test]
    fn a_selection_with_tests_passes() {
        assert_eq!(check(|s| s.tests = vec![pattern("quer")]), Ok(()));
        assert_eq!(check(|_| {}), Ok(()));
    }

    #[test]
    fn a_misspelt_test_names_the_nearest_tests() {
        let e = check(|s| s.tests = vec![pattern("test_qeury")]).unwrap_err();
        assert_eq!(e.filters, "-t test_qeury");
        let names: Vec<&str> = e.tests.iter().map(|t| t.raw()).collect();
        assert_eq!(names, ["test_query_plan", "test_queries", "test_evicts"]);
        assert_eq!(
            e.to_string(),
            "no tests matched -t test_qeury; nearest tests: test_query_plan, test_queries, test_evicts; \
             to allow that, add --no-tests=warn or --no-tests=pass"
        );
    }

    #[test]
    fn a_misspelt_layer_names_the_nearest_layers_and_each_filter_alone() {
        let e = check(|s| {
            s.layers = vec![pattern("app.Databse")];
            s.tests = vec![pattern("^evicts$")];
        })
        .unwrap_err();
        assert_eq!(e.filters, "-t '^evicts$' --layer app.Databse");
        assert_eq!(e.alone, [("-t '^evicts$'".to_string(), 0), ("--layer app.Databse".to_string(), 0)]);
        assert_eq!(e.layers[0].raw(), "app.Database");
        assert_eq!(e.tests[0].raw(), "test_evicts");
    }

    #[test]
    fn without_a_pattern_the_layers_with_tests_are_listed() {
        let m = Manifest { layers: manifest().layers, tests: vec![TestDecl { name: "t".into(), layer: Some(1) }] };
        let selection = Selection { unit_only: true, ..Selection::default() };
        let e = selection.check(&[&m], &[Plan::select(&m, &selection)]).unwrap_err();
        assert_eq!(
            e.to_string().split("; to allow").next().unwrap(),
            "no tests matched -u; layers with tests: app.Cache (1)"
        );
    }

    #[test]
    fn a_partition_larger_than_the_selection_says_how_many_tests_there_are() {
        let e = check(|s| {
            s.tests = vec![pattern("quer")];
            s.partition = Some(Partition { index: 3, count: 3 });
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("no tests matched -t quer --partition 3/3 (alone, -t quer selects 2, --partition 3/3 selects 1); nearest tests: "), "{e}");
    }

    #[test]
    fn a_layer_given_to_t_names_the_flag_meant() {
        let e = check(|s| s.tests = vec![pattern("Cache")]).unwrap_err();
        assert_eq!(e.other_flag, ["-t selects tests, and Cache names layers: --layer Cache"]);
        let e = check(|s| s.layers = vec![pattern("evicts")]).unwrap_err();
        assert_eq!(e.other_flag, ["--layer selects layers, and evicts names tests: -t evicts"]);
    }

    #[test]
    fn names_that_share_their_first_word_are_hinted_once() {
        let m = Manifest {
            layers: vec![],
            tests: ["test_x1 (a.A)", "test_x1 (b.A)", "test_x0 (a.A)", "test_y1 (a.A)"]
                .map(|name| TestDecl { name: name.into(), layer: None })
                .to_vec(),
        };
        let selection = Selection { tests: vec![pattern("test_x7")], ..Selection::default() };
        let e = selection.check(&[&m], &[Plan::select(&m, &selection)]).unwrap_err();
        let names: Vec<&str> = e.tests.iter().map(|t| t.raw()).collect();
        assert_eq!(names, ["test_x0 (a.A)", "test_x1 (a.A)", "test_y1 (a.A)"]);
    }

    #[test]
    fn distances_are_to_the_nearest_substring() {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        assert_eq!(substring_distance(&chars("query"), &chars("test_query_plan")), 0);
        assert_eq!(substring_distance(&chars("qeury"), &chars("test_query_plan")), 2);
        assert_eq!(substring_distance(&chars("abc"), &chars("")), 3);
        assert_eq!(substring_distance(&chars(""), &chars("abc")), 0);
    }

    #[test]
    fn filters_are_quoted_as_a_shell_needs() {
        assert_eq!(shell_word("test_x1"), "test_x1");
        assert_eq!(shell_word("!Layer"), "'!Layer'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
