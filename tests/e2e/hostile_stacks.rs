//! Hostile suites against the allocation stacks (issue 22, round 2): DWARF that nests to
//! overflow a recursive reader or names every frame with 100 KB, 2 MB function names, a
//! flood of traced blocks and of distinct stacks, and a tracer that lies about its blocks.
//! Each must end in seconds with a bounded output and a note, never with a signal.

use crate::harness::{leakhost, repo, suite, temp_file, Run};

/// Output a hostile probe may write at most, all reports included.
const MAX_OUTPUT: usize = 10 << 20;

/// A LEB128 `u32`.
fn leb(mut n: u32, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A custom section named `name`.
fn custom(name: &str, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::new();
    leb(name.len() as u32, &mut content);
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(body);
    let mut section = vec![0u8];
    leb(content.len() as u32, &mut section);
    section.extend(content);
    section
}

/// `wasm` without its custom sections (names kept: wasmtime names frames from them).
fn without_debug_sections(wasm: &[u8]) -> Vec<u8> {
    let mut out = wasm[..8].to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        at += 1;
        let (mut size, mut shift) = (0usize, 0);
        loop {
            let byte = wasm[at];
            at += 1;
            size |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let name_is_debug = id == 0 && wasm[at + 1..].starts_with(b".debug");
        if !name_is_debug {
            out.extend_from_slice(&wasm[start..at + size]);
        }
        at += size;
    }
    out
}

/// DWARF 4 whose one compile unit covers all code with a subprogram and `depth` nested
/// inlined subroutines, each named (through its abstract origin) by a string of `name_len` bytes.
pub(crate) fn hostile_dwarf(depth: usize, name_len: usize) -> Vec<u8> {
    // Abbreviations: 1 compile unit, 2 the named abstract subprogram, 3 the concrete
    // subprogram, 4 an inlined subroutine; all with children but 2.
    let abbrev: Vec<u8> = [
        &[1, 0x11, 1, 0x11, 0x01, 0x12, 0x06, 0, 0][..],
        &[2, 0x2e, 0, 0x03, 0x08, 0, 0],
        &[3, 0x2e, 1, 0x11, 0x01, 0x12, 0x06, 0x31, 0x13, 0, 0],
        &[4, 0x1d, 1, 0x31, 0x13, 0x11, 0x01, 0x12, 0x06, 0, 0],
        &[0],
    ]
    .concat();
    let mut dies = vec![1u8];
    dies.extend_from_slice(&0u32.to_le_bytes());
    dies.extend_from_slice(&u32::MAX.to_le_bytes());
    // The abstract subprogram comes right after the CU DIE: offset 11 (header) + 9.
    let origin: u32 = 11 + dies.len() as u32;
    dies.push(2);
    dies.extend(std::iter::repeat_n(b'f', name_len));
    dies.push(0);
    let subprogram = |code: u8, dies: &mut Vec<u8>| {
        dies.push(code);
        if code == 3 {
            dies.extend_from_slice(&0u32.to_le_bytes());
            dies.extend_from_slice(&u32::MAX.to_le_bytes());
            dies.extend_from_slice(&origin.to_le_bytes());
        } else {
            dies.extend_from_slice(&origin.to_le_bytes());
            dies.extend_from_slice(&0u32.to_le_bytes());
            dies.extend_from_slice(&u32::MAX.to_le_bytes());
        }
    };
    subprogram(3, &mut dies);
    for _ in 0..depth {
        subprogram(4, &mut dies);
    }
    dies.extend(std::iter::repeat_n(0u8, depth + 2));
    let mut info = Vec::new();
    info.extend_from_slice(&((dies.len() + 7) as u32).to_le_bytes());
    info.extend_from_slice(&4u16.to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes());
    info.push(4);
    info.extend(dies);
    [custom(".debug_abbrev", &abbrev), custom(".debug_info", &info)].concat()
}

/// The leakstacks suite with its DWARF replaced by `dwarf`.
pub(crate) fn leakstacks_with(name: &str, dwarf: &[u8]) -> std::path::PathBuf {
    let wasm = std::fs::read(suite("leakstacks")).unwrap();
    let mut hostile = without_debug_sections(&wasm);
    hostile.extend_from_slice(dwarf);
    temp_file(name, &hostile)
}

/// Runs `wasm -N4 -r` with every report, and checks what any hostile probe must: a status
/// of 0-3, and at most [`MAX_OUTPUT`] written.
fn probe(wasm: &std::path::Path, extra: &[&str]) -> Run {
    let dir = wasm.parent().unwrap();
    let (json, junit, html) = (dir.join("r.json"), dir.join("r.xml"), dir.join("r.html"));
    let mut args = vec!["run", wasm.to_str().unwrap(), "-N4", "-r"];
    args.extend_from_slice(&["--json", json.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    args.extend_from_slice(&["--html", html.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let run = leakhost(args);
    assert!((0..=3).contains(&run.status), "status {}: {}", run.status, run.stderr);
    let files: usize = [json, junit, html].iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len() as usize)).sum();
    let written = run.stdout.len() + run.stderr.len() + files;
    assert!(written < MAX_OUTPUT, "{written} bytes written");
    assert!(files > 0, "the reports were written");
    run
}

#[test]
fn dwarf_nested_to_overflow_the_reader_costs_the_lines_not_the_run() {
    let wasm = leakstacks_with("deep-dwarf.wasm", &hostile_dwarf(30_000, 1));
    let run = probe(&wasm, &[]);
    assert!(
        run.stdout.contains("(names only: its DWARF nests deeper than 256 levels, so its line tables are not read)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("allocated by test_rc_cycle at:"), "the stacks are still there, by name");
}

#[test]
fn dwarf_that_names_every_inlined_frame_with_100_kb_is_capped() {
    let wasm = leakstacks_with("wide-dwarf.wasm", &hostile_dwarf(200, 100_000));
    let run = probe(&wasm, &[]);
    assert!(
        run.stdout.contains("long stacks are cut: at most 32 inlined frames per call"),
        "{}",
        &run.stdout[..run.stdout.len().min(4000)]
    );
    let longest = run.stdout.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 2_000, "a line of {longest} bytes");
}

/// The v2 fixture with its placeholders filled in.
pub(crate) fn leaky_v2(
    name: &str,
    depth: usize,
    name_len: usize,
    calls: u32,
    distinct: u32,
    size: u32,
    counted: (u64, u64),
) -> std::path::PathBuf {
    let wat = std::fs::read_to_string(repo().join("tests/fixtures/leaky_v2.wat")).unwrap();
    let names: Vec<String> = (0..depth).map(|i| format!("f{i}_{}", "n".repeat(name_len))).collect();
    let chain: String = (1..depth).map(|i| format!("(func ${} (call ${}))\n", names[i], names[i - 1])).collect();
    let wat = wat
        .replace("$NAME_0", &format!("${}", names[0]))
        .replace("$NAME_TOP", &format!("${}", names[depth - 1]))
        .replace("CHAIN", &chain)
        .replace("DISTINCT", &distinct.to_string())
        .replace("CALLS", &calls.to_string())
        .replace("SIZE", &size.to_string())
        .replace("COUNTED_BLOCKS", &counted.0.to_string())
        .replace("COUNTED_BYTES", &counted.1.to_string());
    temp_file(name, &wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn two_megabyte_function_names_in_deep_stacks_stay_small() {
    let wasm = leaky_v2("long-names.wasm", 25, 2 << 20, 20, 1, 16, (20, 320));
    let run = probe(&wasm, &[]);
    assert!(run.stdout.contains("Where UnitTests leaks"), "{}", &run.stdout[..run.stdout.len().min(3000)]);
    assert!(run.stdout.contains('…'), "long names are cut");
}

#[test]
fn a_flood_of_traced_blocks_stops_the_replay_not_the_run() {
    let wasm = leaky_v2("flood.wasm", 2, 4, 5_000, 1, 16, (5_000, 80_000));
    let run = probe(&wasm, &["--max-traced-blocks", "1000", "--fail-on-leak"]);
    assert_eq!(run.status, 3, "the verdict stands: {}", run.stdout);
    let note = "the replay stopped recording: more than 1000 blocks were live at once (--max-traced-blocks); the verdict stands";
    // Once, though both replays stopped.
    assert_eq!(run.stdout.matches(note).count(), 1, "{}", run.stdout);
}

#[test]
fn distinct_stacks_are_capped() {
    // 18 depths of recursion: 18 distinct stacks (wasmtime keeps 20 frames of each).
    let wasm = leaky_v2("distinct.wasm", 2, 4, 300, 18, 16, (300, 4_800));
    let run = probe(&wasm, &["--max-distinct-stacks", "10"]);
    assert!(run.stdout.contains("it met 10 distinct stacks (--max-distinct-stacks)"), "{}", run.stdout);
    let groups = run.stdout.lines().filter(|l| l.ends_with(" at:")).count();
    assert!((1..=10).contains(&groups), "{groups} groups");
}

#[test]
fn a_tracer_that_claims_more_than_the_counters_is_not_believed() {
    // Each traced block claims 4 GB; the counters say 16 bytes.
    let wasm = leaky_v2("liar.wasm", 2, 4, 1, 1, u32::MAX, (1, 16));
    let run = probe(&wasm, &[]);
    assert!(run.stdout.contains("the trace cannot be trusted"), "{}", run.stdout);
    assert!(!run.stdout.contains("bytes per iteration, allocated"), "{}", run.stdout);
}
