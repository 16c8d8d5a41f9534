//! A wasmtime error as text, with a cap on every part a guest controls.
//!
//! wasmtime's own rendering (`{error:?}`) copies every frame's function and module name
//! whole, and the name section gives them no length limit: ten frames of a 1 MiB name
//! made a 10 MiB message per trap. This renders the same layout (the backtrace, then
//! anyhow's `Caused by:` list) with each name cut to [`MAX_FRAME_NAME`] bytes and the
//! whole to [`MAX_TRAP_MESSAGE`], without ever holding more than that.

use std::fmt::{self, Write};

use crate::text::{shorten, GuestText};

/// Longest function or module name in a trap message's backtrace, in bytes; a longer
/// one keeps its start, `…` and a hash of the whole (`text::shorten`).
pub const MAX_FRAME_NAME: usize = 1024;
/// Longest trap message, in bytes.
pub const MAX_TRAP_MESSAGE: usize = 64 * 1024;

/// What ends a message cut at [`MAX_TRAP_MESSAGE`].
const CUT_NOTE: &str = "… [message cut at 64 KiB]";

/// A string that stops growing at its limit: formatting into it past the limit fails,
/// which ends the `Display` impl writing into it early.
struct Bounded {
    text: String,
    max: usize,
    cut: bool,
}

impl Bounded {
    fn new(max: usize) -> Self {
        Bounded { text: String::new(), max, cut: false }
    }
}

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.max.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let mut keep = room;
        while !s.is_char_boundary(keep) {
            keep -= 1;
        }
        self.text.push_str(&s[..keep]);
        self.cut = true;
        Err(fmt::Error)
    }
}

/// `error` as `{error:?}` lays it out, every name and the whole capped, with at most
/// `max_frames` frames of its backtrace (a line says how many more there were).
pub fn render(error: &wasmtime::Error, max_frames: usize) -> String {
    let mut out = Bounded::new(MAX_TRAP_MESSAGE - CUT_NOTE.len());
    let mut chain = error.chain();
    // wasmtime attaches the backtrace as the outermost context of a trap.
    let top = chain.next();
    let _ = match (error.downcast_ref::<wasmtime::WasmBacktrace>(), top) {
        (Some(backtrace), _) => write_backtrace(&mut out, backtrace, max_frames),
        (None, Some(top)) => write!(out, "{top}"),
        (None, None) => Ok(()),
    };
    let causes: Vec<&(dyn std::error::Error + 'static)> = chain.collect();
    if !causes.is_empty() && !out.cut {
        let _ = write_causes(&mut out, &causes);
    }
    let mut text = out.text;
    if out.cut {
        text.push_str(CUT_NOTE);
    }
    text
}

/// wasmtime's backtrace layout (`WasmBacktrace`'s `Display`, without DWARF details).
fn write_backtrace(out: &mut Bounded, backtrace: &wasmtime::WasmBacktrace, max_frames: usize) -> fmt::Result {
    out.write_str("error while executing at wasm backtrace:")?;
    let frames = backtrace.frames();
    // Only the frames shown are rendered: hashing a long name is the cost.
    for (i, frame) in frames.iter().take(max_frames).enumerate() {
        write!(out, "\n  {i:>3}: ")?;
        if let Some(offset) = frame.module_offset() {
            write!(out, "{offset:#8x} - ")?;
        }
        write!(out, "{}!", name(frame.module().name().unwrap_or("<unknown>")))?;
        match frame.func_name() {
            Some(func) => write!(out, "{}", name(func))?,
            None => write!(out, "<wasm function {}>", frame.func_index())?,
        }
    }
    if frames.len() > max_frames {
        write!(out, "\n    ... {} more frames not shown", frames.len() - max_frames)?;
    }
    Ok(())
}

/// A guest-chosen name, capped and on one line: a newline in it cannot forge a frame.
fn name(raw: &str) -> String {
    GuestText::from(shorten(raw, MAX_FRAME_NAME).as_ref()).line().to_string()
}

/// anyhow's `Caused by:` list: one indented cause, or several numbered ones.
fn write_causes(out: &mut Bounded, causes: &[&(dyn std::error::Error + 'static)]) -> fmt::Result {
    out.write_str("\n\nCaused by:")?;
    for (n, cause) in causes.iter().enumerate() {
        let mut text = Bounded::new(out.max.saturating_sub(out.text.len()));
        let _ = write!(text, "{cause}");
        out.write_char('\n')?;
        for (i, line) in text.text.split('\n').enumerate() {
            match (i, causes.len() > 1) {
                (0, true) => write!(out, "{n: >5}: ")?,
                (0, false) => out.write_str("    ")?,
                (_, true) => out.write_str("\n       ")?,
                (_, false) => out.write_str("\n    ")?,
            }
            out.write_str(line)?;
        }
        if text.cut {
            out.cut = true;
            return Err(fmt::Error);
        }
    }
    Ok(())
}

/// `text` cut to [`MAX_TRAP_MESSAGE`] bytes, for a message that adds to a rendered one.
pub fn capped(text: String) -> String {
    if text.len() <= MAX_TRAP_MESSAGE {
        return text;
    }
    let mut keep = MAX_TRAP_MESSAGE - CUT_NOTE.len();
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{CUT_NOTE}", &text[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trap(wat: &str) -> wasmtime::Error {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        instance.get_typed_func::<(), ()>(&mut store, "run").unwrap().call(&mut store, ()).unwrap_err()
    }

    /// `{error:?}` without the Rust backtrace anyhow adds under `RUST_BACKTRACE=1`.
    fn wasmtime_text(error: &wasmtime::Error) -> String {
        let text = format!("{error:?}");
        text.split("\n\nStack backtrace:").next().unwrap_or_default().trim_end().to_string()
    }

    #[test]
    fn short_names_render_exactly_as_wasmtime_does() {
        let error = trap(
            r#"(module $m (func $inner unreachable) (func $outer call $inner)
                 (func (export "run") call $outer) (func (i32.load (i32.const 0)) drop) (memory 1))"#,
        );
        assert_eq!(render(&error, 20), wasmtime_text(&error));
        let error = trap(r#"(module (memory 1) (func (export "run") (drop (i32.load (i32.const 70000)))))"#);
        assert_eq!(render(&error, 20), wasmtime_text(&error));
        let cut = render(&trap(r#"(module (func $f (export "run") unreachable))"#), 0);
        assert!(cut.starts_with("error while executing at wasm backtrace:\n    ... 1 more frames not shown\n"));
    }

    #[test]
    fn long_names_are_cut_with_a_hash_and_the_message_is_capped() {
        // Function names have no length limit; a module name has wasmparser's 100,000 bytes.
        let long = |c: char, n: usize| c.to_string().repeat(n);
        let wat = format!(
            r#"(module ${} (func ${} unreachable) (func ${} call 0) (func (export "run") call 1))"#,
            long('m', 90_000),
            long('a', 1 << 20),
            long('b', 1 << 20),
        );
        let text = render(&trap(&wat), 20);
        assert!(text.len() < 6 * MAX_FRAME_NAME, "{} bytes", text.len());
        // Three frames name the module, two of them a function.
        assert_eq!(text.matches("…#").count(), 5, "{text}");
        assert!(text.ends_with("wasm trap: wasm `unreachable` instruction executed"), "{text}");
        assert_eq!(capped("x".repeat(MAX_TRAP_MESSAGE + 1)).len(), MAX_TRAP_MESSAGE);
        assert!(capped("x".repeat(MAX_TRAP_MESSAGE + 1)).ends_with(CUT_NOTE));
    }

    #[test]
    fn a_newline_in_a_name_cannot_forge_a_frame() {
        let forged = "(module (func $\"a\\n    1: 0x0 - forged\" (export \"run\") unreachable))";
        let text = render(&trap(forged), 20);
        assert!(text.contains("a\\n    1: 0x0 - forged"), "{text}");
    }
}
