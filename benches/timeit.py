#!/usr/bin/env python3
"""A minimal stand-in for hyperfine, used by benches/run.sh only when hyperfine is missing.

    timeit.py --warmup K --runs N --export-json FILE [--prepare CMD] CMD

Runs CMD (split like a shell would, no shell) K times untimed and N times timed, output to
/dev/null, and writes a JSON file shaped like hyperfine's export (results[0]: command, mean,
stddev, median, min, max, times, exit_codes). Fails if CMD exits non-zero.
"""

import argparse
import json
import shlex
import statistics
import subprocess
import time

p = argparse.ArgumentParser()
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--runs", type=int, default=20)
p.add_argument("--export-json", required=True)
p.add_argument("--prepare")
p.add_argument("command")
a = p.parse_args()
argv = shlex.split(a.command)


def once():
    if a.prepare:
        subprocess.run(shlex.split(a.prepare), check=True, stdout=subprocess.DEVNULL)
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


for _ in range(a.warmup):
    once()
times = [once() for _ in range(a.runs)]
result = {
    "command": a.command,
    "mean": statistics.mean(times),
    "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
    "median": statistics.median(times),
    "min": min(times),
    "max": max(times),
    "times": times,
    "exit_codes": [0] * len(times),
}
json.dump({"results": [result]}, open(a.export_json, "w"), indent=1)
print(f"  {a.command}\n    median {result['median'] * 1e3:.2f} ms  (min {result['min'] * 1e3:.2f}, max {result['max'] * 1e3:.2f}, {a.runs} runs)")
