//! What a module may be before it is compiled: part of the policy a suite runs
//! under, checked by `suite::load` (the check itself is `suite::limits`).

/// Default `--max-module-size`.
pub const DEFAULT_MAX_MODULE_SIZE: usize = 64 * 1024 * 1024;
/// Default `--max-functions`.
pub const DEFAULT_MAX_FUNCTIONS: u32 = 100_000;
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
