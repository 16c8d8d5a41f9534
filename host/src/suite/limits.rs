//! Structural limits checked before a module is compiled: its size, how many functions
//! it has and how deeply its control flow nests.
//!
//! Compilation runs on the host with no time or memory budget of its own, and
//! Cranelift's cost grows faster than linearly in nesting depth: 100,000 nested loops
//! (a 300 KB module) compiled for minutes. These checks are one linear pass over the
//! bytes, so a hostile module is refused before it costs anything.

use wasmparser::{Operator, Parser, Payload};

pub use crate::sandbox::{ModuleLimits, DEFAULT_MAX_FUNCTIONS, DEFAULT_MAX_MODULE_SIZE, DEFAULT_MAX_NESTING};

/// A limit a module exceeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    /// What was measured, e.g. "function count".
    pub what: &'static str,
    /// The module's value (at least; counting stops at the first excess).
    pub value: u64,
    /// The limit.
    pub limit: u64,
    /// The flag that raises it.
    pub flag: &'static str,
}

impl ModuleLimits {
    /// Checks the sections that cost compile time; `None` if the module is within every
    /// limit or is malformed (wasmtime's validation then says how).
    pub fn check(&self, bytes: &[u8]) -> Option<Exceeded> {
        let mut functions = 0u32;
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.ok()? {
                Payload::FunctionSection(reader) => {
                    functions = functions.saturating_add(reader.count());
                    if functions > self.max_functions {
                        return Some(self.functions_exceeded(functions));
                    }
                }
                Payload::CodeSectionEntry(body) => {
                    let depth = max_nesting(&body, self.max_nesting)?;
                    if depth > self.max_nesting {
                        return Some(Exceeded {
                            what: "control-flow nesting depth",
                            value: depth.into(),
                            limit: self.max_nesting.into(),
                            flag: "--max-nesting",
                        });
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn functions_exceeded(&self, functions: u32) -> Exceeded {
        Exceeded {
            what: "function count",
            value: functions.into(),
            limit: self.max_functions.into(),
            flag: "--max-functions",
        }
    }
}

/// The deepest nesting in `body`, stopping as soon as it passes `limit`; `None` if the
/// body does not decode.
fn max_nesting(body: &wasmparser::FunctionBody<'_>, limit: u32) -> Option<u32> {
    let mut reader = body.get_operators_reader().ok()?;
    let (mut depth, mut deepest) = (0u32, 0u32);
    while !reader.eof() {
        match reader.read().ok()? {
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Try { .. }
            | Operator::TryTable { .. } => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return Some(deepest);
                }
            }
            Operator::End | Operator::Delegate { .. } => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Some(deepest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        let body = format!("{}{}", "(block ".repeat(depth), ")".repeat(depth));
        wat::parse_str(format!("(module (func {body}))")).unwrap()
    }

    #[test]
    fn nesting_up_to_the_limit_passes_and_past_it_is_named() {
        let limits = ModuleLimits { max_nesting: 50, ..ModuleLimits::default() };
        assert_eq!(limits.check(&nested(50)), None);
        let exceeded = limits.check(&nested(51)).unwrap();
        assert_eq!((exceeded.what, exceeded.value, exceeded.limit), ("control-flow nesting depth", 51, 50));
        assert_eq!(exceeded.flag, "--max-nesting");
        // Sibling blocks do not add up.
        let flat =
            wat::parse_str(format!("(module (func {}))", "(block) (loop) (if (i32.const 0) (then))".repeat(100)));
        assert_eq!(limits.check(&flat.unwrap()), None);
    }

    #[test]
    fn functions_past_the_limit_are_named() {
        let limits = ModuleLimits { max_functions: 10, ..ModuleLimits::default() };
        let module = |n: usize| wat::parse_str(format!("(module {})", "(func)".repeat(n))).unwrap();
        assert_eq!(limits.check(&module(10)), None);
        let exceeded = limits.check(&module(11)).unwrap();
        assert_eq!((exceeded.what, exceeded.value, exceeded.flag), ("function count", 11, "--max-functions"));
    }

    #[test]
    fn malformed_modules_are_left_to_wasmtime() {
        assert_eq!(ModuleLimits::default().check(b"\0asm\x01\0\0\0\x0a\xff"), None);
    }
}
