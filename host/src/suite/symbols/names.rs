//! How a frame is named for a reader: the function's whole path, capped in length, and a
//! file path that says whose file it is (the suite's package, a crates.io crate, the
//! standard library), each distinct text stored once.

use std::collections::HashMap;

use crate::leak::stacks::{Frame, Origin};
use crate::text::GuestText;

/// The longest function name or path shown, in bytes; a longer one is cut and tagged with
/// a hash of the whole, so two names that differ past the cut stay two names.
pub const MAX_NAME: usize = 512;

/// `name`, cut to [`MAX_NAME`] bytes with `…` and a short hash of the whole when longer.
pub fn capped(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() <= MAX_NAME {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut cut = MAX_NAME - 20;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = blake3::hash(name.as_bytes()).to_hex();
    std::borrow::Cow::Owned(format!("{}…#{}", &name[..cut], &hash[..12]))
}

/// Distinct frame texts, each held once, within a budget of bytes.
pub struct Interner {
    texts: HashMap<String, GuestText>,
    bytes: usize,
    budget: usize,
    /// The budget ran out: later new texts are replaced by a placeholder.
    pub spent: bool,
}

impl Interner {
    /// An interner holding at most `budget` bytes of text.
    pub fn new(budget: usize) -> Self {
        Interner { texts: HashMap::new(), bytes: 0, budget, spent: false }
    }

    /// The shared text for `text`.
    pub fn text(&mut self, text: &str) -> GuestText {
        if let Some(shared) = self.texts.get(text) {
            return shared.clone();
        }
        if self.bytes + text.len() > self.budget {
            self.spent = true;
            return GuestText::from("<not named: the frame text budget is spent>");
        }
        self.bytes += text.len();
        let shared = GuestText::from(text);
        self.texts.insert(text.to_string(), shared.clone());
        shared
    }
}

/// Where the standard library's sources are: rustc remaps them to `/rustc/HASH/library/`,
/// and its dependencies (hashbrown, ...) to `/rust/deps/`; wasi-libc's to `wasisdk://`.
pub fn is_runtime_path(path: &str) -> bool {
    (path.contains("/rustc/") && path.contains("/library/"))
        || path.contains("/rust/deps/")
        || path.starts_with("wasisdk:")
        || path.contains("/wasi-libc/")
}

/// A source path as reports show it, from the full path and the directory its compile
/// unit was built in:
/// - the standard library from its crate on (`std/src/...`), its dependencies likewise;
/// - a crates.io or git crate from its directory on (`lru-0.12.5/src/lib.rs`);
/// - a file under the build directory relative to the directory holding its package
///   (`inventory/src/sessions.rs`: a workspace builds in its root, a lone package in its
///   own directory, whose name then leads), C sources relative to the suite's directory;
/// - anything else from the directory before its last `src/`, or as it is.
pub fn short_path(path: &str, comp_dir: Option<&str>) -> String {
    for marker in ["/library/", "/rust/deps/"] {
        if let Some(at) = path.find(marker) {
            return path[at + marker.len()..].to_string();
        }
    }
    for marker in ["/registry/src/", "/git/checkouts/"] {
        if let Some(at) = path.find(marker) {
            // Past the index (or repository) directory.
            let rest = &path[at + marker.len()..];
            return rest.split_once('/').map_or(rest, |(_, crate_path)| crate_path).to_string();
        }
    }
    if let Some(dir) = comp_dir.filter(|d| !d.is_empty()) {
        let dir = dir.trim_end_matches('/');
        if let Some(rest) = path.strip_prefix(dir).and_then(|r| r.strip_prefix('/')) {
            let package = dir.rsplit('/').next().unwrap_or(dir);
            return match rest.starts_with("src/") {
                true => format!("{package}/{rest}"),
                false => rest.to_string(),
            };
        }
    }
    if let Some(at) = path.rfind("/src/") {
        let package_start = path[..at].rfind('/').map_or(0, |i| i + 1);
        return path[package_start..].to_string();
    }
    path.to_string()
}

/// `new<[u8; 12]>` is `new`, `{closure#0}<i32, F>` is `{closure#0}`: line tables carry
/// the instance's arguments, which only make a frame longer.
pub fn without_generics(name: &str) -> &str {
    match name.find('<') {
        Some(0) | None => name,
        Some(at) => &name[..at],
    }
}

/// Gives the suite's inlined frames that line tables name without a path (a build with
/// `debug = "line-tables-only"` has no linkage names) the path of a named frame of the same
/// file: a closure that of the function around it, a function the module of its
/// neighbours. Outermost first, so nested closures build on their parents. A build with
/// `debug = "limited"` names every frame in full and needs none of this.
pub fn qualify(frames: &mut [Frame]) {
    for i in (0..frames.len()).rev() {
        let frame = &frames[i];
        if frame.origin != Origin::User || frame.function.raw().contains("::") || frame.file.is_none() {
            continue;
        }
        let same_file =
            |f: &&Frame| f.file == frame.file && f.origin == Origin::User && f.function.raw().contains("::");
        let name = frame.function.raw();
        let qualified = if name.starts_with("{closure") {
            frames[i + 1..].iter().find(same_file).map(|outer| format!("{}::{name}", outer.function.raw()))
        } else {
            let outer = frames[i + 1..].iter().find(same_file).or_else(|| frames[..i].iter().rev().find(same_file));
            outer.and_then(|f| module_of(f.function.raw())).map(|module| format!("{module}::{name}"))
        };
        if let Some(qualified) = qualified {
            frames[i].function = GuestText::from(qualified);
        }
    }
}

/// `leak::helper` is in `leak`; `leak::helper::{closure#0}` too. `None` for a trait
/// impl (`<T as Trait>::f`), whose module the name does not say.
fn module_of(function: &str) -> Option<&str> {
    if function.starts_with('<') {
        return None;
    }
    let path = function.split("::{").next().unwrap_or(function);
    path.rsplit_once("::").map(|(module, _)| module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_say_whose_file_it_is() {
        let ws = Some("/work/sample-tests");
        assert_eq!(short_path("/work/sample-tests/leakstacks/src/lib.rs", ws), "leakstacks/src/lib.rs");
        assert_eq!(short_path("/home/u/demo/src/lib.rs", Some("/home/u/demo")), "demo/src/lib.rs");
        assert_eq!(short_path("/home/u/cs/suite.c", Some("/home/u/cs")), "suite.c");
        let lru = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/lru-0.12.5/src/lib.rs";
        assert_eq!(
            short_path(lru, Some("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/lru-0.12.5")),
            "lru-0.12.5/src/lib.rs"
        );
        assert_eq!(short_path("/rustc/abc/library/alloc/src/vec/mod.rs", None), "alloc/src/vec/mod.rs");
        assert_eq!(short_path("/rust/deps/hashbrown-0.15.2/src/raw.rs", None), "hashbrown-0.15.2/src/raw.rs");
        assert_eq!(short_path("/elsewhere/pkg/src/a.rs", Some("/work")), "pkg/src/a.rs");
        assert_eq!(short_path("lib.rs", None), "lib.rs");
        assert!(is_runtime_path("/rustc/abc/library/std/src/lib.rs") && !is_runtime_path(lru));
    }

    #[test]
    fn long_names_are_cut_and_stay_distinct() {
        let (a, b) = ("x".repeat(4000) + "a", "x".repeat(4000) + "b");
        let (ca, cb) = (capped(&a), capped(&b));
        assert!(ca.len() <= MAX_NAME + 20 && ca.contains('…'));
        assert_ne!(ca, cb);
        assert_eq!(capped("short"), "short");
        assert_eq!(capped(&"é".repeat(600)).chars().filter(|&c| c == '…').count(), 1, "cut on a char boundary");
    }

    #[test]
    fn interned_texts_are_shared_and_bounded() {
        let mut interner = Interner::new(10);
        let a = interner.text("abcdef");
        assert_eq!(interner.text("abcdef"), a);
        assert!(!interner.spent);
        assert!(interner.text("ghijklmno").raw().starts_with("<not named"));
        assert!(interner.spent);
    }
}
