#!/usr/bin/env python3
"""Copies a wasm module without its custom sections, keeping `name` (function names).

    strip_custom.py IN.wasm OUT.wasm [--keep NAME ...]   (default --keep name)
    strip_custom.py --list IN.wasm                       prints each section: id, name, bytes

Used by benches/headline.sh to compare a line-tables build (`.debug_*` sections) with the same code
and nothing else: every non-custom section is copied byte for byte, in order. Unlike `wasm-strip`
(wabt), which drops `name` too, the stripped copy still names functions in stacks.
"""

import argparse
import sys


def leb(data, i):
    """Decodes an unsigned LEB128 at data[i]: (value, next index)."""
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def sections(data):
    """Yields (id, custom name or None, start, end) for every section; start..end spans it whole."""
    if data[:4] != b"\0asm":
        sys.exit("not a wasm module (no \\0asm magic)")
    i = 8
    while i < len(data):
        start = i
        sid = data[i]
        size, body = leb(data, i + 1)
        end = body + size
        name = None
        if sid == 0:
            n, j = leb(data, body)
            name = data[j:j + n].decode("utf-8", "replace")
        yield sid, name, start, end
        i = end


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true")
    p.add_argument("--keep", action="append")
    p.add_argument("input")
    p.add_argument("output", nargs="?")
    a = p.parse_args()
    data = open(a.input, "rb").read()
    if a.list:
        for sid, name, start, end in sections(data):
            print(f"{sid:3} {name or '-':30} {end - start:10}")
        return
    if not a.output:
        p.error("OUT.wasm is needed unless --list")
    keep = set(a.keep or ["name"])
    out = bytearray(data[:8])
    for sid, name, start, end in sections(data):
        if sid != 0 or name in keep:
            out += data[start:end]
    with open(a.output, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
