#!/usr/bin/env python3
"""The Markdown tables of benches/startup.sh: startup_report.py RESULTS_DIR.

Reads callgrind_annotate --inclusive=yes output (inclusive.txt, self.txt) of
`leakhost run samplelayers.wasm -N4 -r` and the floor runs, and attributes the instructions to phases
by the inclusive cost of named functions (see PHASES). Phases nest in the call tree, so each is given as
the inclusive cost of its function(s) minus the named sub-phases inside it; what no phase names is "rest".
"""

import os
import re
import sys

R = sys.argv[1]
LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*?)\s*$")


def parse(path):
    """{function name: Ir} from callgrind_annotate output (the largest figure when a name repeats)."""
    total, costs = 0, {}
    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if not m:
            continue
        ir, rest = int(m.group(1).replace(",", "")), m.group(2)
        if rest.startswith("PROGRAM TOTALS"):
            total = ir
            continue
        rest = re.sub(r" \[[^\]]*\]$", "", rest)  # the object file
        fn = rest.split(":", 1)[1] if ":" in rest else rest  # drop the source file
        costs[fn] = max(costs.get(fn, 0), ir)
    return total, costs


def collected(path):
    if not os.path.exists(path):
        return None
    for line in open(path):
        m = re.search(r"Collected : (\d+)", line)
        if m:
            return int(m.group(1))
    return None


total, inc = parse(os.path.join(R, "inclusive.txt"))
_, own = parse(os.path.join(R, "self.txt"))


def ir(*names):
    return sum(inc.get(n, 0) for n in names)


# Function names as this build of leakhost has them (inlined functions do not appear).
CACHE_LOAD = "leakhost::suite::cache::Cache::load"
DESER = "wasmtime::runtime::module::Module::deserialize_open_file"
KEY = "leakhost::suite::cache::EntryKey::new"
MAC = "leakhost::suite::cache::Cache::mac"
INSTR = "leakhost::suite::instrument::instrument"
LOAD = "leakhost::suite::load"
LOAD_ALL = "leakhost::cli::load_all"
START = "leakhost::run::session::Session::start"
G_START = "leakhost::run::instance::GuestInstance::start"
INSTANTIATE = "leakhost::run::instance::instantiate"
LINKER = "leakhost::sandbox::linker"
MANIFEST = "leakhost::run::instance::GuestInstance::manifest"
IMAGE = "leakhost::run::image::InitImage::capture"
RUN = "leakhost::run::run"
SEND = "leakhost::run::event::EventSink::send"
MAIN = "leakhost::main"
CLAP = "clap_builder::derive::Parser::try_parse_from"
THREAD = "start_thread"
DISPATCH = "leakhost::cli::dispatch"
CALL_RAW = "wasmtime::runtime::func::typed::TypedFunc<Params,Results>::call_raw"
RUN_TEST = "leakhost::run::instance::GuestInstance::run_test"
HOOK = "leakhost::run::instance::GuestInstance::hook"
CALL_HOOK = "leakhost::run::session::Session::call_hook"

missing = [n for n in (CACHE_LOAD, DESER, INSTR, IMAGE, LOAD, LOAD_ALL, START, RUN, MAIN, CLAP, THREAD, DISPATCH) if n not in inc]
guest_start = max(0, ir(G_START) - ir(INSTANTIATE) - 10_000)  # the guest's own start-up calls (approx.)
phases = [
    # The command runs on the main thread (cli/stack.rs); other threads are the epoch ticker's.
    ("process start, std runtime, main outside clap and the command (ld.so, libc, std)",
     total - ir(THREAD) - ir(CLAP) - ir(DISPATCH)),
    ("argument parsing (clap `try_parse_from`)", ir(CLAP)),
    ("cache lookup + authentication (`Cache::load` less deserialize)", ir(CACHE_LOAD) - ir(DESER)),
    ("  of which the entry key (`EntryKey::new`; the module's hash is the source read's)", ir(KEY)),
    ("  of which the entry's MAC (`Cache::mac`)", ir(MAC)),
    ("deserialize (`wasmtime::Module::deserialize_open_file`: the entry mapped, not copied)", ir(DESER)),
    ("module instrumentation (`suite::instrument::instrument`; a cache hit skips it)", ir(INSTR)),
    ("rest of `suite::load` (reading the .wasm, exports)", ir(LOAD) - ir(CACHE_LOAD) - ir(INSTR)),
    ("WASI linker (`sandbox::linker`)", ir(LINKER)),
    ("instantiate (`run::instance::instantiate`)", ir(INSTANTIATE)),
    ("guest start-up calls in `GuestInstance::start` (declaring the suite)", ir(G_START) - ir(INSTANTIATE)),
    ("manifest (`GuestInstance::manifest`: read + decode)", ir(MANIFEST)),
    ("snapshot (`run::image::InitImage::capture`; only when a fresh instance is needed)", ir(IMAGE)),
    ("rest of `Session::start`", ir(START) - ir(G_START) - ir(LINKER) - ir(MANIFEST) - ir(IMAGE)),
    ("rest of `cli::load_all`", ir(LOAD_ALL) - ir(LOAD) - ir(START)),
    ("the 321 tests x 4 (`run::run` less event sinks)", ir(RUN) - ir(SEND)),
    ("  of which `GuestInstance::run_test` (1,284 calls)", ir(RUN_TEST)),
    ("  of which layer and test hooks (`Session::call_hook`)", ir(CALL_HOOK)),
    ("reporting (`EventSink::send`: progress, human output, summary)", ir(SEND)),
]
top_level = [v for name, v in phases if not name.startswith("  ")]
rest = total - ir(THREAD) - sum(top_level)
phases.append(("rest of the command (engine set-up, plan, reports; nothing is torn down before exit)", rest))
phases.append(("other threads (the epoch ticker)", ir(THREAD)))

floor_true = collected(os.path.join(R, "true.vg"))
floor_rust = collected(os.path.join(R, "empty-rust.vg"))
c1, c2 = collected(os.path.join(R, "floor-cg-1000.vg")), collected(os.path.join(R, "floor-cg-11000.vg"))
# Each variant makes n/10 + n calls: two variants, so 2.2 n calls for n.
per_call = (c2 - c1) / (2.2 * (11000 - 1000)) if c1 is not None and c2 is not None else None
ns = {}
wall = os.path.join(R, "floor-wall.out")
if os.path.exists(wall):
    for line in open(wall):
        k, v = line.split()
        ns.setdefault(k, []).append(float(v))

print(f"### `leakhost run samplelayers.wasm -N4 -r`, warm cache: {total:,} instructions (callgrind)")
print()
if missing:
    print(f"(functions not found in this build, counted as 0: {', '.join(missing)})")
    print()
print("| phase | instructions | share |")
print("|---|---:|---:|")
for name, v in phases:
    print(f"| {name} | {v:,} | {100 * v / total:.1f}% |")
start_wall = {}
if os.path.exists(os.path.join(R, "process-start.json")):
    import json

    for k, c in json.load(open(os.path.join(R, "process-start.json")))["commands"].items():
        start_wall[k] = f"{c['median'] * 1e3:.2f} ms"
print()
print("### The physical floor")
print()
print("| floor | instructions | wall |")
print("|---|---:|---:|")
if floor_true:
    print(f"| process start: `/bin/true` (dynamic glibc) | {floor_true:,} | {start_wall.get('true', '')} |")
if floor_rust:
    print(f"| process start: empty Rust `fn main() {{}}` (rustc -O, dynamic) | {floor_rust:,} | {start_wall.get('empty_rust', '')} |")
if per_call:
    like = sorted(ns.get("leakhost_like", []))
    plain = sorted(ns.get("plain", []))
    w = f"{like[len(like) // 2]:.1f} ns/call (plain {plain[len(plain) // 2]:.1f})" if like else ""
    print(f"| one empty export call through `TypedFunc::call` (benches/floor) | {per_call:,.0f} | {w} |")
    fl = (floor_rust or 0) + 1284 * per_call
    wl = f"{1284 * like[len(like) // 2] / 1000:.0f} µs of calls" if like else ""
    print(f"| floor: empty Rust process + 1,284 export calls | {fl:,.0f} | {wl} |")
    print()
    print(f"The run executes {total / fl:.0f}× the floor's instructions.")
print()
skip = re.compile(r"^(0x[0-9a-f]+|\(below main\)|main|start_thread|_dl_|__libc_start|std::rt::|std::sys::|"
                  r"core::ops::function::FnOnce|<std::sys::thread|leakhost::main$|leakhost::cli::main$|"
                  r"leakhost::cli::execute|wasmtime::runtime::vm::traphandlers|wasmtime::runtime::func::typed|"
                  r".*'\d+$)")
print("### Top inclusive functions (not process start, thread wrappers, guest code or the export call itself)")
print()
print("| function | inclusive Ir |")
print("|---|---:|")
n = 0
for fn, v in sorted(inc.items(), key=lambda kv: -kv[1]):
    if skip.match(fn):
        continue
    print(f"| `{fn}` | {v:,} |")
    n += 1
    if n == 25:
        break
print()
print("### Top self cost")
print()
print("| function | self Ir |")
print("|---|---:|")
for fn, v in sorted(own.items(), key=lambda kv: -kv[1])[:20]:
    print(f"| `{fn}` | {v:,} |")
