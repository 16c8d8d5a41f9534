//! Structural limits checked before a module is compiled: its size, how many functions
//! it has, how deeply its control flow nests, how many locals its functions declare and
//! how large its code is.
//!
//! Compilation runs on the host with no time or memory budget of its own, and
//! Cranelift's cost grows faster than linearly in nesting depth: 100,000 nested loops
//! (a 300 KB module) compiled for minutes. Locals cost compile time without costing
//! bytes: a declaration of 50,000 locals takes 4 bytes, and a 160 KB module of such
//! functions compiled for 54 s. These checks are one linear pass over the bytes, so a
//! hostile module is refused before it costs anything.

use wasmparser::{Operator, Parser, Payload};

/// Default `--max-module-size`.
pub const DEFAULT_MAX_MODULE_SIZE: usize = 64 * 1024 * 1024;
/// Default `--max-functions`.
pub const DEFAULT_MAX_FUNCTIONS: u32 = 50_000;
/// Default `--max-nesting`.
pub const DEFAULT_MAX_NESTING: u32 = 1_000;
/// Default `--max-locals` (BENCHMARKS.md: the worst module within the defaults).
pub const DEFAULT_MAX_LOCALS: u32 = 10_000;
/// Default `--max-total-locals`.
pub const DEFAULT_MAX_TOTAL_LOCALS: u64 = 1_000_000;
/// Default `--max-code-size`.
pub const DEFAULT_MAX_CODE_SIZE: usize = 16 * 1024 * 1024;

/// What a module may be, before it is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleLimits {
    /// Bytes of the module file.
    pub max_size: usize,
    /// Functions defined in the module.
    pub max_functions: u32,
    /// Depth of nested blocks, loops, ifs and try blocks in any function.
    pub max_nesting: u32,
    /// Locals one function declares (its parameters not counted).
    pub max_locals: u32,
    /// Locals all functions declare together.
    pub max_total_locals: u64,
    /// Bytes of the code section: every function body.
    pub max_code_size: usize,
}

impl Default for ModuleLimits {
    fn default() -> Self {
        ModuleLimits {
            max_size: DEFAULT_MAX_MODULE_SIZE,
            max_functions: DEFAULT_MAX_FUNCTIONS,
            max_nesting: DEFAULT_MAX_NESTING,
            max_locals: DEFAULT_MAX_LOCALS,
            max_total_locals: DEFAULT_MAX_TOTAL_LOCALS,
            max_code_size: DEFAULT_MAX_CODE_SIZE,
        }
    }
}

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
        let (mut functions, mut total_locals) = (0u32, 0u64);
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.ok()? {
                Payload::FunctionSection(reader) => {
                    functions = functions.saturating_add(reader.count());
                    if functions > self.max_functions {
                        return Some(self.functions_exceeded(functions));
                    }
                }
                Payload::CodeSectionStart { size, .. } if size as usize > self.max_code_size => {
                    let (value, limit) = (size.into(), self.max_code_size as u64);
                    return Some(Exceeded { what: "code section size", value, limit, flag: "--max-code-size" });
                }
                Payload::CodeSectionEntry(body) => {
                    let locals = locals(&body)?;
                    if locals > self.max_locals.into() {
                        let limit = self.max_locals.into();
                        return Some(Exceeded {
                            what: "locals in one function",
                            value: locals,
                            limit,
                            flag: "--max-locals",
                        });
                    }
                    total_locals += locals;
                    if total_locals > self.max_total_locals {
                        let (value, limit) = (total_locals, self.max_total_locals);
                        return Some(Exceeded {
                            what: "locals in all functions",
                            value,
                            limit,
                            flag: "--max-total-locals",
                        });
                    }
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

/// How many locals `body` declares; `None` if its declarations do not decode.
fn locals(body: &wasmparser::FunctionBody<'_>) -> Option<u64> {
    let mut reader = body.get_locals_reader().ok()?;
    let mut count = 0u64;
    for _ in 0..reader.get_count() {
        count += u64::from(reader.read().ok()?.0);
    }
    Some(count)
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
    fn locals_per_function_and_in_all_functions_are_limited() {
        let limits = ModuleLimits { max_locals: 100, max_total_locals: 250, ..ModuleLimits::default() };
        let module = |locals: &[u32]| {
            let funcs: String =
                locals.iter().map(|n| format!("(func (local {}))", "i32 ".repeat(*n as usize))).collect();
            wat::parse_str(format!("(module {funcs})")).unwrap()
        };
        assert_eq!(limits.check(&module(&[100, 100, 50])), None);
        let one = limits.check(&module(&[50, 101])).unwrap();
        assert_eq!((one.what, one.value, one.limit, one.flag), ("locals in one function", 101, 100, "--max-locals"));
        let all = limits.check(&module(&[100, 100, 51])).unwrap();
        assert_eq!((all.what, all.value, all.flag), ("locals in all functions", 251, "--max-total-locals"));
    }

    #[test]
    fn a_code_section_past_the_limit_is_named() {
        let limits = ModuleLimits { max_code_size: 64, ..ModuleLimits::default() };
        let module = |n: usize| wat::parse_str(format!("(module (func {}))", "nop ".repeat(n))).unwrap();
        assert_eq!(limits.check(&module(10)), None);
        let exceeded = limits.check(&module(100)).unwrap();
        assert_eq!((exceeded.what, exceeded.limit, exceeded.flag), ("code section size", 64, "--max-code-size"));
    }

    #[test]
    fn malformed_modules_are_left_to_wasmtime() {
        assert_eq!(ModuleLimits::default().check(b"\0asm\x01\0\0\0\x0a\xff"), None);
    }
}
