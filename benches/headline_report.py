#!/usr/bin/env python3
"""The Markdown summary of benches/headline.sh: headline_report.py RESULTS_DIR.

One row per comparison: the two commands' medians, the ratio of medians with the per-round
min - max, the target and whether it is met. Missing parts (ONLY=..., no LEAKHOST_BASE) are left out.
"""

import json
import os
import statistics
import sys

R = sys.argv[1]


def load(name):
    path = os.path.join(R, name + ".json")
    return json.load(open(path)) if os.path.exists(path) else None


def kv(name):
    path = os.path.join(R, name)
    out = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                out[k] = v
    return out


meta = kv("meta.txt")
rows = []


def row(what, data, ratio, target, ok):
    if data is None or ratio not in data["ratios"]:
        return
    num, den = ratio.split("/")
    r = data["ratios"][ratio]
    cn, cd = data["commands"][num], data["commands"][den]
    rows.append((what, f"{cn['median'] * 1e3:.1f} ms", f"{cd['median'] * 1e3:.1f} ms",
                 f"**{r['ratio_of_medians']:.2f}×** ({r['min']:.2f}–{r['max']:.2f})", target,
                 "met" if ok(r["ratio_of_medians"]) else "**not met**"))


h = load("headline")
for t in ("base", "new"):
    row(f"1. headline, zope / leakhost-{t}", h, f"zope/lh_{t}", "≥ 100×", lambda x: x >= 100)
row("1. headline, leakhost-base / leakhost-new", h, "lh_base/lh_new", "(info)", lambda x: True)
ln = load("lines")
for t in ("base", "new"):
    row(f"2. line tables / stripped, leakhost-{t}", ln, f"lines_{t}/stripped_{t}", "≤ 1.15×", lambda x: x <= 1.15)
p = load("pertest")
row("3. wasmtime run / leakhost run -N1", p, "wasmtime/lh_N1", "≥ 5×", lambda x: x >= 5)
row("3. wasmtime run / leakhost run -N4 -r", p, "wasmtime/lh_N4_r", "≥ 5×", lambda x: x >= 5)
row("4. -j: bigsuite 50 layers -N20 -r, serial / -j 2", load("jobs_big"), "serial/j2", "≥ 1.6×", lambda x: x >= 1.6)
row("4. -j: zlib -N4 -r, serial / -j 2", load("jobs_zlib"), "serial/j2", "≥ 1.7×", lambda x: x >= 1.7)
row("4. -j: one layer -N20 -r, -j 2 / serial", load("jobs_one_layer"), "j2/serial", "≤ 1.05×", lambda x: x <= 1.05)

print(f"Run of {meta.get('date', '?')}; {meta.get('nproc', '?')} CPUs ({meta.get('cpu', '?')}); "
      f"{meta.get('rounds', '?')} rounds of alternating runs; load {meta.get('load_before', '?')} before, "
      f"{meta.get('load_after', '?')} after.")
for k in ("leakhost_base", "leakhost_new", "sample_debug", "wasmtime", "zope"):
    if k in meta:
        print(f"- {k}: {meta[k]}")
print()
print("| comparison | A median | B median | A / B (per-round min–max) | target | |")
print("|---|---:|---:|---:|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")

sizes = kv("sizes.txt")
if sizes:
    print()
    print("| module | .wasm bytes | cache entry (.cwasm) bytes |")
    print("|---|---:|---:|")
    for m in ("lines", "stripped"):
        entries = ", ".join(f"{t}: {int(sizes[f'cwasm_{t}_{m}']):,}" for t in ("base", "new") if f"cwasm_{t}_{m}" in sizes)
        print(f"| samplelayers ({m}) | {int(sizes['wasm_' + m]):,} | {entries} |")

rss = {}
for w in ("sample", "big"):
    for t in ("base", "new"):
        path = os.path.join(R, f"rss_{w}_{t}.txt")
        if os.path.exists(path):
            rss[w, t] = statistics.median(int(x) for x in open(path).read().split())
if rss:
    print()
    print("| peak RSS (median of 7, KiB) | leakhost-base | leakhost-new | new / base | target | |")
    print("|---|---:|---:|---:|---|---|")
    for w, what in (("sample", "run samplelayers.wasm -N4 -r"), ("big", "run bigsuite (10,000 / 50) -N20 -r")):
        b, n = rss.get((w, "base")), rss.get((w, "new"))
        ratio = f"{n / b:.3f}" if b and n else "–"
        met = ("met" if n / b <= 1.10 else "**not met**") if b and n else ""
        print(f"| `{what}` | {b if b else '–'} | {n if n else '–'} | {ratio} | ≤ 1.10 | {met} |")
