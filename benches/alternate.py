#!/usr/bin/env python3
"""Times commands in alternation (A B A B ...) and prints ratios that a noisy machine cannot fake.

    alternate.py --rounds 15 --warmup 2 --json OUT.json \\
        --cmd NAME RUNS 'COMMAND' --cmd NAME RUNS 'COMMAND' ... \\
        --ratio NAME_A/NAME_B ...

Each round runs every command RUNS times, interleaved run by run (A B A B ..., a command with fewer
runs drops out once its runs are done), so a drift in the machine's load hits every command alike.
COMMAND is split like a shell would (no shell); `env NAME=VALUE ...` works as usual. Output goes to
/dev/null; a non-zero exit stops everything (a benchmark of a failing command means nothing).

Timing: wall clock from posix_spawn to wait4 (no shell, no Python in between), plus the child's
user+sys CPU from wait4. (wait4's maximum RSS is kept in the JSON samples but not printed: it counts
the spawning Python's pages too; peak memory is measured with /usr/bin/time -v instead.)

For each --ratio A/B it prints: the ratio of A's median over all rounds to B's, and the smallest
and largest per-round ratio (A's median in that round over B's). Per-command medians, min and max
are printed too. The JSON has every sample.
"""

import argparse
import json
import os
import shlex
import statistics
import sys
import time


def spawn(argv, env):
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        fa = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        path = argv[0] if "/" in argv[0] else shutil_which(argv[0])
        t0 = time.perf_counter()
        pid = os.posix_spawn(path, argv, env, file_actions=fa)
        _, status, ru = os.wait4(pid, 0)
        wall = time.perf_counter() - t0
    finally:
        os.close(devnull)
    code = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, code


def shutil_which(name):
    import shutil

    found = shutil.which(name)
    if not found:
        sys.exit(f"alternate.py: {name}: not found")
    return found


def split(command):
    argv = shlex.split(command)
    env = dict(os.environ)
    if argv and argv[0] == "env":
        argv.pop(0)
        while argv and "=" in argv[0] and not argv[0].startswith("-"):
            k, v = argv.pop(0).split("=", 1)
            env[k] = v
    return argv, env


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2, help="untimed runs of each command before round 1")
    p.add_argument("--json", required=True)
    p.add_argument("--cmd", nargs=3, action="append", metavar=("NAME", "RUNS", "COMMAND"), required=True)
    p.add_argument("--ratio", action="append", default=[], metavar="A/B")
    p.add_argument("--title", default="")
    a = p.parse_args()

    cmds = [(name, int(runs), command, *split(command)) for name, runs, command in a.cmd]
    names = [c[0] for c in cmds]
    for r in a.ratio:
        num, _, den = r.partition("/")
        if num not in names or den not in names:
            sys.exit(f"alternate.py: --ratio {r}: unknown command name")

    def once(c):
        wall, cpu, rss, code = spawn(c[3], c[4])
        if code != 0:
            sys.exit(f"alternate.py: {c[0]}: exit {code}: {c[2]}")
        return wall, cpu, rss

    for c in cmds:
        for _ in range(a.warmup):
            once(c)
    samples = {name: [] for name in names}  # (round, wall, cpu, rss)
    load = []
    for rnd in range(a.rounds):
        load.append(os.getloadavg()[0])
        for j in range(max(c[1] for c in cmds)):
            for c in cmds:
                if j < c[1]:
                    samples[c[0]].append((rnd, *once(c)))

    def med(name, rnd=None):
        return statistics.median(s[1] for s in samples[name] if rnd is None or s[0] == rnd)

    out = {"title": a.title, "rounds": a.rounds, "load1_per_round": load, "commands": {}, "ratios": {}}
    if a.title:
        print(f"  {a.title}")
    for name, runs, command, *_ in cmds:
        walls = [s[1] for s in samples[name]]
        out["commands"][name] = {
            "command": command,
            "runs_per_round": runs,
            "median": statistics.median(walls),
            "min": min(walls),
            "max": max(walls),
            "cpu_median": statistics.median(s[2] for s in samples[name]),
            "samples": samples[name],
        }
        c = out["commands"][name]
        print(f"    {name:14} median {c['median'] * 1e3:9.2f} ms  (min {c['min'] * 1e3:.2f}, max {c['max'] * 1e3:.2f},"
              f" {len(walls)} runs; cpu {c['cpu_median'] * 1e3:.2f} ms)  {command}")
    for r in a.ratio:
        num, _, den = r.partition("/")
        per_round = [med(num, k) / med(den, k) for k in range(a.rounds)]
        ratio = med(num) / med(den)
        out["ratios"][r] = {"ratio_of_medians": ratio, "per_round": per_round, "min": min(per_round), "max": max(per_round)}
        print(f"    ratio {r:28} {ratio:8.3f}  (per round: min {min(per_round):.3f}, max {max(per_round):.3f}; {a.rounds} rounds)")
    print(f"    load average per round: {min(load):.2f} - {max(load):.2f}")
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
