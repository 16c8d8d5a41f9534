//! Flags of a `leakhost-c.toml` that make clang or wasm-ld run programs other than
//! themselves, or read flags from a file leakhost does not see. Building a C suite
//! compiles it natively, outside the sandbox; these would let a suite directory choose
//! what runs (`-B.` made clang run a `wasm-ld` from the suite's own directory), so they
//! are refused unless `--allow-native-flags` is given.

/// The first flag in `flags` that can make the build run another program, with why.
pub(super) fn native_flag(flags: &[String]) -> Option<(String, &'static str)> {
    let mut args = flags.iter().peekable();
    while let Some(flag) = args.next() {
        let next = args.peek().map(|s| s.as_str());
        let takes_next = |name: &str| flag == name && next.is_some();
        let with_next = || format!("{flag} {}", next.unwrap_or_default());
        if let Some(why) = why_native(flag) {
            return Some((flag.clone(), why));
        }
        // Flags whose value decides, given as `--flag=VALUE` or `--flag VALUE`.
        let shown = |value_is_next: bool| if value_is_next { with_next() } else { flag.clone() };
        if let Some((_, is_next)) = target_of(flag, next).filter(|(t, _)| !t.starts_with("wasm32")) {
            return Some((shown(is_next), "compiles for another target, whose linker is a native program"));
        }
        if let Some((_, is_next)) = sysroot_of(flag, next).filter(|(root, _)| !is_system_dir(root)) {
            return Some((shown(is_next), "takes the toolchain's libraries and tools from a directory outside /usr"));
        }
        if takes_next("-Xclang") {
            return Some((
                with_next(),
                "passes a flag to the compiler itself, which can load plugins (-load, -plugin)",
            ));
        }
        if flag == "-mllvm" && next.is_some_and(|n| n.trim_start_matches('-').starts_with("load")) {
            return Some((with_next(), "loads an LLVM plugin"));
        }
        if takes_next("-o") {
            return Some((with_next(), "chooses where clang writes; leakhost writes to target/leakhost-c"));
        }
    }
    None
}

/// Why `flag` alone makes the build run another program or read hidden flags.
fn why_native(flag: &str) -> Option<&'static str> {
    let starts = |prefix: &str| flag.starts_with(prefix);
    Some(match flag {
        _ if starts("@") => "reads more flags from a file",
        _ if starts("--config") => "reads more flags from a configuration file",
        _ if starts("-B") || starts("--prefix") => {
            "adds a directory that clang runs its tools (wasm-ld, an assembler) from"
        }
        _ if starts("-fuse-ld") || starts("--ld-path") => "chooses the program that links",
        _ if starts("-fplugin") || starts("-fpass-plugin") => "loads a compiler plugin",
        _ if starts("-Xclang=") => "passes a flag to the compiler itself, which can load plugins (-load, -plugin)",
        _ if starts("-ccc-") => "chooses where clang finds its programs",
        _ if starts("--gcc-toolchain") || starts("-gcc-toolchain") || starts("--gcc-install-dir") => {
            "chooses where clang finds its linker"
        }
        "-fno-integrated-as" | "-no-integrated-as" => "runs an external assembler",
        _ if starts("-o") && flag.len() > 2 && !starts("-objc") => {
            "chooses where clang writes; leakhost writes to target/leakhost-c"
        }
        _ => return None,
    })
}

/// The target `flag` asks for (`--target=T`, `-target T`, `--target T`), and whether it
/// is the next argument.
fn target_of<'a>(flag: &'a str, next: Option<&'a str>) -> Option<(&'a str, bool)> {
    match flag {
        "-target" | "--target" => next.map(|t| (t, true)),
        _ => flag.strip_prefix("--target=").or_else(|| flag.strip_prefix("-target=")).map(|t| (t, false)),
    }
}

/// The sysroot `flag` sets (`--sysroot=D`, `--sysroot D`, `-isysrootD`, `-isysroot D`),
/// and whether it is the next argument.
fn sysroot_of<'a>(flag: &'a str, next: Option<&'a str>) -> Option<(&'a str, bool)> {
    match flag {
        "--sysroot" | "-isysroot" => next.map(|d| (d, true)),
        _ => flag.strip_prefix("--sysroot=").or_else(|| flag.strip_prefix("-isysroot")).map(|d| (d, false)),
    }
}

/// Whether `dir` is where the system's packages install (its programs are the system's).
fn is_system_dir(dir: &str) -> bool {
    let path = std::path::Path::new(dir);
    let resolved = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    resolved.starts_with("/usr") && !resolved.starts_with("/usr/local")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(flags: &[&str]) -> Option<String> {
        native_flag(&flags.iter().map(|f| f.to_string()).collect::<Vec<_>>()).map(|(flag, _)| flag)
    }

    #[test]
    fn flags_that_run_programs_are_found() {
        for (flags, shown) in [
            (&["-O2", "-B."][..], "-B."),
            (&["-B", "."], "-B"),
            (&["--prefix=/tmp"], "--prefix=/tmp"),
            (&["-fuse-ld=/tmp/ld"], "-fuse-ld=/tmp/ld"),
            (&["--ld-path=./ld"], "--ld-path=./ld"),
            (&["-fplugin=./p.so"], "-fplugin=./p.so"),
            (&["-fpass-plugin=./p.so"], "-fpass-plugin=./p.so"),
            (&["-Xclang", "-load"], "-Xclang -load"),
            (&["-mllvm", "-load=./p.so"], "-mllvm -load=./p.so"),
            (&["@flags.rsp"], "@flags.rsp"),
            (&["--config=x.cfg"], "--config=x.cfg"),
            (&["--sysroot=./root"], "--sysroot=./root"),
            (&["--sysroot", "/tmp"], "--sysroot /tmp"),
            (&["--target=x86_64-linux-gnu"], "--target=x86_64-linux-gnu"),
            (&["-target", "x86_64-linux-gnu"], "-target x86_64-linux-gnu"),
            (&["-ccc-install-dir", "."], "-ccc-install-dir"),
            (&["-no-integrated-as"], "-no-integrated-as"),
            (&["-o", "/tmp/x"], "-o /tmp/x"),
        ] {
            assert_eq!(refused(flags).as_deref(), Some(shown), "{flags:?}");
        }
    }

    #[test]
    fn ordinary_flags_pass() {
        let ordinary = [
            "-O2",
            "-Wall",
            "-std=c11",
            "-DNDEBUG",
            "-Iinclude",
            "-g",
            "-Wl,--wrap=foo",
            "-mllvm",
            "-wasm-enable-sjlj",
            "--target=wasm32-wasi",
            "-fno-exceptions",
            "--sysroot=/usr",
            "-Os",
        ];
        assert_eq!(refused(&ordinary), None);
    }
}
