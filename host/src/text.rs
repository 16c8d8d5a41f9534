//! Text that came from a guest: names, messages, captured output, trap descriptions.
//!
//! A hostile suite controls every byte of these, so they are one type from the moment
//! they are decoded, and the only ways to show one are the renderers here: escaped for
//! a terminal, sanitised for XML. JSON escapes by itself, so serialising is plain.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A string from the guest (valid UTF-8, otherwise untrusted). Cheap to clone.
///
/// The empty text holds no `Arc`: most tests print nothing, and cloning one shared empty
/// `Arc` from every `-j` worker made its reference count a cache line all threads fought
/// over. `None` is the only empty value, so the derived comparisons stay those of the text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GuestText(Option<Arc<str>>);

impl GuestText {
    /// Wraps a string that came from the guest.
    pub fn new(text: impl Into<Arc<str>>) -> Self {
        let text = text.into();
        GuestText((!text.is_empty()).then_some(text))
    }

    /// Decodes guest bytes, replacing invalid UTF-8 with U+FFFD.
    pub fn from_utf8_lossy(bytes: &[u8]) -> Self {
        match bytes.is_empty() {
            true => GuestText(None),
            false => GuestText(Some(String::from_utf8_lossy(bytes).into())),
        }
    }

    /// The text exactly as the guest gave it: for matching and comparing, never for printing.
    pub fn raw(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// For a terminal, on one line: every control character is shown escaped (`\n`, `\e`, `\u{9b}`).
    pub fn line(&self) -> Terminal<'_> {
        Terminal { text: self.raw(), keep_lines: false }
    }

    /// For a terminal, over several lines: newlines and tabs stay, every other control
    /// character is shown escaped, so nothing can move the cursor or rewrite a line.
    pub fn lines(&self) -> Terminal<'_> {
        Terminal { text: self.raw(), keep_lines: true }
    }

    /// For XML 1.0 text and attributes: characters XML cannot carry, even escaped, and the
    /// DEL and C1 controls it only discourages (a CI page or terminal may act on them)
    /// become U+FFFD. Markup characters are the XML writer's to escape.
    pub fn xml(&self) -> Cow<'_, str> {
        xml_safe(self.raw())
    }
}

impl From<&str> for GuestText {
    fn from(text: &str) -> Self {
        GuestText::new(text)
    }
}

impl From<String> for GuestText {
    fn from(text: String) -> Self {
        GuestText::new(text)
    }
}

impl fmt::Debug for GuestText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.raw(), f)
    }
}

impl Serialize for GuestText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.raw())
    }
}

/// Reports are read back (`--baseline`, `leakhost report`): their text is as untrusted as
/// the guest's, so it comes back as guest text.
impl<'de> Deserialize<'de> for GuestText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(GuestText::from)
    }
}

/// Guest text rendered for a terminal; see [`GuestText::line`] and [`GuestText::lines`].
pub struct Terminal<'a> {
    text: &'a str,
    keep_lines: bool,
}

/// Characters that a terminal could act on or that hide what a reader sees: C0 and C1
/// controls, DEL, the bidirectional overrides that reorder a line ("Trojan source"), the
/// line and paragraph separators (a line break to some terminals and log viewers, none to
/// others), the invisible byte-order mark and the noncharacters U+FFFE and U+FFFF.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{feff}'
                | '\u{fffe}'
                | '\u{ffff}'
        )
}

impl fmt::Display for Terminal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.text;
        while let Some(at) = rest.find(|c: char| needs_escape(c) && !(self.keep_lines && matches!(c, '\n' | '\t'))) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("found a char here");
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\u{1b}' => f.write_str("\\e")?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// `text` cut to at most `max` bytes when it is longer: its start, `…`, and the first 8
/// hex digits of the blake3 hash of the whole text, so that two long names that share
/// their start stay distinct. A `max` too small for that suffix keeps the suffix alone.
pub fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let hash = blake3::hash(text.as_bytes()).to_hex();
    let suffix = format!("…#{}", &hash[..8]);
    let mut keep = max.saturating_sub(suffix.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    Cow::Owned(format!("{}{suffix}", &text[..keep]))
}

/// XML 1.0 allows tab, newline, carriage return and everything from U+0020 but the
/// surrogates (impossible in a `str`) and U+FFFE/U+FFFF; DEL and C1 are discouraged.
fn xml_safe(text: &str) -> Cow<'_, str> {
    let bad = |c: char| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}');
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.chars().map(|c| if bad(c) { '\u{fffd}' } else { c }).collect())
}

/// "256 MiB", "512 KiB", "100 bytes".
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The escapes of the hardening issue: ESC, BEL, NUL, CR, C1 (CSI), OSC 52, newline.
    const HOSTILE: &str = "a\u{1b}[2Kb\u{7}c\u{0}d\re\u{9b}31mf\u{1b}]52;c;aGk=\u{7}g\nRan 99 tests";

    #[test]
    fn one_line_escapes_every_control_character() {
        let shown = GuestText::from(HOSTILE).line().to_string();
        assert_eq!(shown, "a\\e[2Kb\\u{7}c\\u{0}d\\re\\u{9b}31mf\\e]52;c;aGk=\\u{7}g\\nRan 99 tests");
        assert!(!shown.chars().any(char::is_control));
    }

    #[test]
    fn several_lines_keep_newlines_and_tabs_only() {
        let shown = GuestText::from("x\ty\nz\r\u{1b}w\u{202e}").lines().to_string();
        assert_eq!(shown, "x\ty\nz\\r\\ew\\u{202e}");
    }

    #[test]
    fn separators_byte_order_marks_and_noncharacters_are_escaped() {
        let text = GuestText::from("a\u{2028}b\u{2029}c\u{feff}d\u{fffe}e\u{ffff}f");
        assert_eq!(text.line().to_string(), "a\\u{2028}b\\u{2029}c\\u{feff}d\\u{fffe}e\\u{ffff}f");
        assert_eq!(text.lines().to_string(), text.line().to_string());
    }

    #[test]
    fn long_text_is_shortened_with_a_hash_of_the_whole() {
        assert!(matches!(shorten("short", 5), Cow::Borrowed("short")));
        let (a, b) = (format!("{}a", "é".repeat(1000)), format!("{}b", "é".repeat(1000)));
        let (short_a, short_b) = (shorten(&a, 100), shorten(&b, 100));
        assert!(short_a.len() <= 100 && short_a.starts_with("éé"), "{short_a}");
        assert!(short_a.contains("…#") && short_a != short_b, "{short_a} {short_b}");
        assert_eq!(shorten(&a, 100), short_a, "the same text shortens the same way");
    }

    #[test]
    fn plain_text_is_unchanged() {
        let text = GuestText::from("leak.Tree grows: é ✓");
        assert_eq!(text.line().to_string(), "leak.Tree grows: é ✓");
        assert!(matches!(text.xml(), Cow::Borrowed(_)));
    }

    #[test]
    fn xml_replaces_what_xml_cannot_carry() {
        assert_eq!(GuestText::from("a\u{1}b\tc\n\u{ffff}").xml(), "a\u{fffd}b\tc\n\u{fffd}");
        assert_eq!(GuestText::from(HOSTILE).xml().chars().filter(|&c| c == '\u{fffd}').count(), 6);
    }

    #[test]
    fn empty_text_is_one_value() {
        assert_eq!(GuestText::from(""), GuestText::default());
        assert_eq!(GuestText::from_utf8_lossy(b""), GuestText::default());
        assert!(GuestText::from("").is_empty() && GuestText::from("").raw().is_empty());
        assert!(GuestText::from("") < GuestText::from("a"));
    }

    #[test]
    fn lossy_decoding_replaces_bad_bytes() {
        assert_eq!(GuestText::from_utf8_lossy(b"ok\xff").raw(), "ok\u{fffd}");
    }
}
