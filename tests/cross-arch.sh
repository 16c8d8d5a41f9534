#!/usr/bin/env bash
# The same numbers on a second architecture: build leakhost for aarch64, run every
# sample suite under qemu-aarch64 with both engines, and compare the JSON reports byte
# for byte with the x86_64 (native) run of the same .wasm files.
#
# Usage: tests/cross-arch.sh [--build-only]
#   CROSS_TARGET_DIR  target dir of the aarch64 build (default: target/cross-aarch64)
#   CROSS_ENGINES     engines to compare (default: "cranelift pulley")
# Needs: rustup, and Debian's gcc-aarch64-linux-gnu and qemu-user (installed if missing).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
triple=aarch64-unknown-linux-gnu
cross_dir=${CROSS_TARGET_DIR:-$repo/target/cross-aarch64}
engines=${CROSS_ENGINES:-"cranelift pulley"}
sysroot=/usr/aarch64-linux-gnu

step() { printf '== %s\n' "$*" >&2; }

step "toolchain"
rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
    apt-get update -qq && apt-get install -y gcc-aarch64-linux-gnu qemu-user
fi

step "build leakhost for $triple (into $cross_dir)"
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    cargo build --release --locked -p leakhost --bin leakhost \
    --manifest-path "$repo/Cargo.toml" --target "$triple" --target-dir "$cross_dir"
cross_bin=$cross_dir/$triple/release/leakhost
[[ ${1:-} == --build-only ]] && exit 0

step "build leakhost for the host and the sample suites"
cargo build --release --locked -p leakhost --bin leakhost --manifest-path "$repo/Cargo.toml"
native_bin=$repo/target/release/leakhost
(cd "$repo/sample-tests" && env -u CARGO_TARGET_DIR cargo build --release --locked --target wasm32-wasip1)
wasm_dir=$repo/sample-tests/target/wasm32-wasip1/release

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export NO_COLOR=1

# One line per run: suite, then its flags; those of the determinism e2e test
# (tests/e2e/determinism.rs). The faults suite's endless loop ends on fuel: a --timeout
# would cost its full length per run, and where it stops depends on the machine's speed.
runs=(
    "samplelayers -N3 -r"
    "failures -N2"
    "leak -N4 -r"
    "faults --timeout 0 --fuel 100000000 --max-memory 32M"
    "determinism -N3 -r"
    "determinism --seed 7"
    "faults -t test_stdout_flood --fuel 20000000 --timeout 0 --max-output 4M"
    "layertraps -N2 -r"
    "hostile -N2 -r"
    "sdkforms -N3 -r"
    "verdicts -N4 -r"
    "leakstacks -N4 -r"
    "inventory_leaks -N4 -r"
    "snapshots -N2"
    "deepstack --max-stack 32M"
)

# Each architecture gets its own module cache: entries are not portable across targets.
run_all() { # arch binary [runner...]
    local arch=$1 bin=$2
    shift 2
    local i=0 spec suite flags engine
    for engine in $engines; do
        for spec in "${runs[@]}"; do
            read -r suite flags <<<"$spec"
            i=$((i + 1))
            # shellcheck disable=SC2086 # flags are words on purpose
            LEAKHOST_CACHE_DIR=$out/cache-$arch "$@" "$bin" run "$wasm_dir/$suite.wasm" $flags \
                --engine "$engine" --no-timings --json "$out/$arch-$i.json" >"$out/$arch-$i.txt" 2>&1 || true
            printf '%s\t%s %s --engine %s\n' "$i" "$suite" "$flags" "$engine" >>"$out/$arch.index"
        done
    done
}

step "run on x86_64 (native)"
start=$SECONDS
run_all x86_64 "$native_bin"
step "x86_64 runs took $((SECONDS - start)) s"

step "run on aarch64 (qemu-aarch64)"
start=$SECONDS
run_all aarch64 "$cross_bin" qemu-aarch64 -L "$sysroot"
step "aarch64 runs took $((SECONDS - start)) s"

step "compare"
fail=0
while IFS=$'\t' read -r i what; do
    if [[ ! -s $out/x86_64-$i.json ]]; then
        echo "MISSING  $what: no JSON on x86_64"; sed -n 1,5p "$out/x86_64-$i.txt"; fail=1
    elif cmp -s "$out/x86_64-$i.json" "$out/aarch64-$i.json"; then
        echo "same     $what ($(wc -c <"$out/x86_64-$i.json") bytes)"
    else
        echo "DIFFERS  $what"; diff "$out/x86_64-$i.json" "$out/aarch64-$i.json" | head -20 || true; fail=1
    fi
done <"$out/x86_64.index"
exit $fail
