#!/usr/bin/env bash
# Installs what the C and C++ sample suites (sample-tests-c/) need on Debian or Ubuntu: clang, lld (wasm-ld),
# wasi-libc, clang's wasm32 runtime (libclang_rt.builtins) and libc++ for wasm32-wasi, and chromium, in
# which tests/e2e/html.rs loads the HTML report headless. Installs only what
# is missing, and runs `apt-get update` only if an install from the current package lists fails.
set -euo pipefail

packages=(clang lld wasi-libc libclang-rt-dev-wasm32 libc++-dev-wasm32 chromium)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "tests/setup.sh: no apt-get here; install ${missing[*]} (or their equivalents) by hand" >&2
    exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
    as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "tests/setup.sh: installing ${missing[*]}" >&2
if ! "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null; then
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
