//! Links the unwinder into the host statically, as `gcc -static-libgcc` would.
//!
//! Rust's std asks for `libgcc_s.so` on linux-gnu only for the `_Unwind_*` functions. Loading it
//! costs every run an extra shared object to map and relocate, and its constructor probes the CPU
//! with `cpuid`, which exits to the hypervisor on a virtual machine: about 0.3 ms of a 4 ms headline
//! run (BENCHMARKS.md, "Speed (issue 26), start-up"). The same unwinder comes with GCC as the static
//! `libgcc_eh.a`; linked whole, it defines those functions before std's `-lgcc_s`, and the linker's
//! `--as-needed` then leaves libgcc_s out. Where no `libgcc_eh.a` is found (another C toolchain, a
//! static build) nothing changes: the host links libgcc_s as before and is only slower to start.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let target = |name: &str| std::env::var(format!("CARGO_CFG_TARGET_{name}")).unwrap_or_default();
    let static_crt = target("FEATURE").split(',').any(|f| f == "crt-static");
    if target("OS") != "linux" || target("ENV") != "gnu" || static_crt {
        return;
    }
    if let Some(archive) = static_unwinder() {
        let dir = archive.parent().expect("an absolute path has a parent");
        println!("cargo:rerun-if-changed={}", archive.display());
        println!("cargo:rustc-link-search=native={}", dir.display());
        println!("cargo:rustc-link-lib=static:+whole-archive,-bundle=gcc_eh");
    }
}

/// Where the target's C compiler keeps `libgcc_eh.a`, if it has one.
fn static_unwinder() -> Option<PathBuf> {
    let host = std::env::var("HOST").ok()?;
    let target = std::env::var("TARGET").ok()?;
    // A cross build links with the linker configured for the target; without one, the host's
    // `cc` would name the host's archive, so leave the link as it is.
    let compiler = match std::env::var("RUSTC_LINKER") {
        Ok(linker) => linker,
        Err(_) if host == target => "cc".to_string(),
        Err(_) => return None,
    };
    let output = Command::new(compiler).arg("-print-file-name=libgcc_eh.a").output().ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    // An unknown file is printed back as its bare name.
    (output.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
