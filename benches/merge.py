#!/usr/bin/env python3
"""Merges the per-block hyperfine exports that run.sh's bench_pair wrote.

    merge.py RESULTS_DIR NAME...

For each NAME, reads RESULTS_DIR/NAME.block*.json, writes RESULTS_DIR/NAME.json with all the
timed runs together (median, min, max, mean, stddev recomputed; user and system are the mean of
the blocks' means) and removes the block files.
"""

import glob
import json
import os
import statistics
import sys

d = sys.argv[1]
for name in sys.argv[2:]:
    paths = sorted(glob.glob(os.path.join(d, f"{name}.block*.json")))
    blocks = [json.load(open(p))["results"][0] for p in paths]
    times = [t for b in blocks for t in b["times"]]
    merged = {
        "command": blocks[0]["command"],
        "mean": statistics.mean(times),
        "stddev": statistics.stdev(times),
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "user": statistics.mean(b.get("user", 0.0) for b in blocks),
        "system": statistics.mean(b.get("system", 0.0) for b in blocks),
        "times": times,
        "blocks": len(blocks),
        "block_medians": [b["median"] for b in blocks],
    }
    json.dump({"results": [merged]}, open(os.path.join(d, f"{name}.json"), "w"), indent=1)
    for p in paths:
        os.remove(p)
