#!/usr/bin/env python3
"""Summarises what benches/run.sh measured: reads RESULTS_DIR (hyperfine JSON exports,
floor.txt, rss-*.txt, meta.txt) and prints the results table and the targets, as Markdown.

    report.py RESULTS_DIR
"""

import json
import os
import statistics
import sys

D = sys.argv[1]


def hf(name):
    """(median, min, max, n) in seconds of one hyperfine export, or None."""
    path = os.path.join(D, f"{name}.json")
    if not os.path.exists(path):
        return None
    r = json.load(open(path))["results"][0]
    return {"median": r["median"], "min": r["min"], "max": r["max"], "n": len(r["times"]),
            "stddev": r.get("stddev") or 0.0, "command": r["command"],
            "cpu": (r["user"] + r["system"]) if "user" in r else None,
            "block_medians": r.get("block_medians")}


def lines(name):
    path = os.path.join(D, name)
    return open(path).read().split() if os.path.exists(path) else []


def ms(s):
    return f"{s * 1e3:.1f} ms" if s >= 0.01 else f"{s * 1e3:.2f} ms"


def row(label, name):
    r = hf(name)
    if r is None:
        return f"| {label} | not measured | | | |"
    cpu = ms(r["cpu"]) if r["cpu"] is not None else "—"
    return f"| {label} | {ms(r['median'])} | {ms(r['min'])} – {ms(r['max'])} | {r['n']} | {cpu} |"


meta = dict(l.split("=", 1) for l in open(os.path.join(D, "meta.txt")).read().splitlines() if "=" in l)
out = []
p = out.append

p(f"Machine: {meta.get('nproc')} CPUs, {meta.get('cpu')}; {meta.get('date')}; {meta.get('kernel')}")
p(f"leakhost {meta.get('leakhost_rev')}; {meta.get('rustc')}; {meta.get('python')}, zope.testrunner {meta.get('zope')}")
p(f"Timer: {meta.get('timer')}; load average before {meta.get('load_before')}, after {meta.get('load_after')}")
p("")
p("### Wall-clock (median, min – max, runs; CPU = mean user+sys per run)")
p("")
p("| measurement | median | min – max | runs | CPU |")
p("|---|---|---|---|---|")
for label, name in [
    ("a. leakhost samplelayers -N1 (warm cache)", "lh_sample_N1"),
    ("a. zope.testrunner 8.3 samplelayers -N1", "zope_N1"),
    ("a. leakhost samplelayers -N4 (warm cache)", "lh_sample_N4"),
    ("a. zope.testrunner 8.3 samplelayers -N4", "zope_N4"),
    ("f. leakhost samplelayers -N4 -r", "lh_sample_N4_r"),
    ("b. leakhost 1-test suite -N4 (startup)", "lh_one_N4"),
    ("b. leakhost 1-test suite -N4 -r (startup)", "lh_one_N4_r"),
    ("b. leakhost bigsuite -N4, -t selects 1 test", "lh_big_sel1_N4"),
    ("b. leakhost bigsuite (10,000 tests, 50 layers) -N4", "lh_big_N4"),
    ("b./f. leakhost bigsuite -N4 -r", "lh_big_N4_r"),
    ("c. native libtest, 10,000 #[test], --test-threads=1", "native_t1"),
    ("c. native libtest, 10,000 #[test], default threads", "native_default"),
    ("d. bigwasm cold: leakhost --no-cache run -t (1 test)", "lh_bigwasm_nocache"),
    ("d. bigwasm first run, empty cache (compile + store)", "lh_bigwasm_emptycache"),
    ("d. bigwasm warm: leakhost run -t (1 test)", "lh_bigwasm_warm"),
    ("d. bigwasm warm: leakhost inspect", "lh_bigwasm_inspect"),
    ("d. bigwasm cold: leakhost --no-cache inspect", "lh_bigwasm_inspect_nocache"),
]:
    p(row(label, name))

g = lambda name: (hf(name) or {}).get("median")
results = {}

p("")
p("### Derived")
p("")
floor = [float(x) for x in lines("floor-plain.txt")]
floor_like = [float(x) for x in lines("floor-like.txt")]
fl = statistics.median(floor) if floor else None
fll = statistics.median(floor_like) if floor_like else None
if fl is not None:
    p(f"- floor, empty `() -> ()` export via TypedFunc, default Config: **{fl:.1f} ns/call** "
      f"(median of {len(floor)} runs of {meta.get('floor_calls')} calls; {min(floor):.1f} – {max(floor):.1f})")
if fll is not None:
    p(f"- floor, leakhost's engine settings (epoch interruption, set_epoch_deadline per call, `(i32) -> i32`): "
      f"**{fll:.1f} ns/call** ({min(floor_like):.1f} – {max(floor_like):.1f})")

runs = int(meta.get("big_tests", 10000)) * 4
for flag, name in [("", "lh_big_N4"), (" -r", "lh_big_N4_r")]:
    big, one, sel = g(name), g("lh_one_N4" + ("_r" if flag else "")), g("lh_big_sel1_N4")
    if big is None:
        continue
    raw = big / runs * 1e9
    p(f"- bigsuite -N4{flag}: raw wall / {runs:,} test runs = **{raw:.0f} ns/test**")
    if one is not None:
        corr = (big - one) / runs * 1e9
        results[f"corr{flag}"] = corr
        p(f"  - minus startup (1-test suite -N4{flag}, {ms(one)}): **{corr:.0f} ns/test**"
          + (f"; minus the floor ({fl:.1f} ns): **{corr - fl:.0f} ns/test**" if fl is not None else ""))
    if sel is not None and not flag:
        corr2 = (big - sel) / (runs - 4) * 1e9
        p(f"  - minus the same suite with one test selected ({ms(sel)}, which also pays for loading the "
          f"10,000-test manifest and the 1-layer plan): **{corr2:.0f} ns/test**")

for flag in ("1", "default"):
    r = g(f"native_{flag}" if flag == "default" else "native_t1")
    if r is not None:
        p(f"- native libtest ({'--test-threads=1' if flag == '1' else 'default threads'}): "
          f"{r / int(meta.get('native_tests', 10000)) * 1e9:.0f} ns/test (whole binary run / tests)")

a1, z1, a4, z4 = g("lh_sample_N1"), g("zope_N1"), g("lh_sample_N4"), g("zope_N4")
if a1 and z1:
    p(f"- samplelayers -N1: zope / leakhost = **{z1 / a1:.1f}x**")
if a4 and z4:
    p(f"- samplelayers -N4: zope / leakhost = **{z4 / a4:.1f}x**")
s4, s4r, b4, b4r = g("lh_sample_N4"), g("lh_sample_N4_r"), g("lh_big_N4"), g("lh_big_N4_r")


def blocks(a, b):
    ba, bb = (hf(a) or {}).get("block_medians"), (hf(b) or {}).get("block_medians")
    if not ba or not bb:
        return ""
    ratios = [(y / x - 1) * 100 for x, y in zip(ba, bb)]
    return f"; per alternating block: {', '.join(f'{r:+.1f}%' for r in ratios)}"


if s4 and s4r:
    results["sample_r"] = (s4r / s4 - 1) * 100
    p(f"- cost of -r on samplelayers -N4: {results['sample_r']:+.1f}% ({ms(s4)} → {ms(s4r)}; "
      f"{(s4r - s4) / (321 * 4) * 1e9:.0f} ns more per test run{blocks('lh_sample_N4', 'lh_sample_N4_r')})")
if b4 and b4r:
    results["big_r"] = (b4r / b4 - 1) * 100
    p(f"- cost of -r on bigsuite -N4: {results['big_r']:+.1f}% ({ms(b4)} → {ms(b4r)}; "
      f"{(b4r - b4) / runs * 1e9:.0f} ns more per test run{blocks('lh_big_N4', 'lh_big_N4_r')})")

p("")
p("### Peak memory (/usr/bin/time -v, Maximum resident set size; median and max)")
p("")
p("| run | median | max | runs |")
p("|---|---|---|---|")
rss = {}
for label, name in [("bigsuite -N4 -r", "rss-big-r"), ("bigsuite -N4", "rss-big"),
                    ("samplelayers -N4 -r", "rss-sample-r"), ("bigwasm warm run -t (1 test)", "rss-bigwasm-warm"),
                    ("bigwasm --no-cache run -t (1 test)", "rss-bigwasm-nocache")]:
    kb = [int(x) for x in lines(f"{name}.txt")]
    if kb:
        rss[name] = statistics.median(kb) / 1024
        p(f"| {label} | {statistics.median(kb) / 1024:.1f} MiB | {max(kb) / 1024:.1f} MiB | {len(kb)} |")
    else:
        p(f"| {label} | not measured | | |")

p("")
p("### Targets")
p("")


def target(label, met, detail):
    p(f"- {label}: **{'met' if met else 'MISSED'}** — {detail}")


if "corr" in results and fl is not None:
    over = results["corr"] - fl
    target("< 1 µs per test (bigsuite -N4, startup-corrected, minus floor)", over < 1000,
           f"{over:.0f} ns/test" + ("" if over < 1000 else f", over by {over - 1000:.0f} ns"))
if "corr -r" in results and fl is not None:
    over = results["corr -r"] - fl
    target("< 1 µs per test with -r (same, informational)", over < 1000, f"{over:.0f} ns/test")
w = g("lh_bigwasm_warm")
if w is not None:
    wasm_kib = int(meta.get("bigwasm_bytes", 0)) / 1024
    target(f"warm start < 20 ms ({wasm_kib:.0f} KiB module, run -t 1 test)", w < 0.020,
           f"{ms(w)}" + ("" if w < 0.020 else f", over by {ms(w - 0.020)}"))
wi = g("lh_bigwasm_inspect")
if wi is not None:
    target("warm start < 20 ms (inspect)", wi < 0.020, ms(wi) + ("" if wi < 0.020 else f", over by {ms(wi - 0.020)}"))
if "rss-big-r" in rss:
    m = rss["rss-big-r"]
    target("peak memory < 64 MiB (bigsuite -N4 -r)", m < 64, f"{m:.1f} MiB" + ("" if m < 64 else f", over by {m - 64:.1f} MiB"))
if "sample_r" in results:
    v = results["sample_r"]
    target("-r costs at most 5% (samplelayers -N4)", v <= 5, f"{v:+.1f}%")
if "big_r" in results:
    v = results["big_r"]
    target("-r costs at most 5% (bigsuite -N4, informational)", v <= 5, f"{v:+.1f}%")
if a4 and z4:
    target("faster than zope.testrunner on samplelayers -N4", a4 < z4, f"{z4 / a4:.1f}x faster")

print("\n".join(out))
