#!/usr/bin/env bash
# Runs every cargo-fuzz (libFuzzer) target in fuzz/ for a bounded time each; fails on any crash, panic,
# failed assertion, timeout or out-of-memory.
#
#   scripts/fuzz.sh [seconds per target]                   (default 20; CI uses 15)
#   FUZZ_TARGETS="sse_roundtrip action_payload" scripts/fuzz.sh 600
#   FUZZ_OPT_LEVEL=3 scripts/fuzz.sh 1800                  (long runs: slower build, faster fuzzing)
#   FUZZ_SANITIZER=address scripts/fuzz.sh 300             (AddressSanitizer, see below)
#
# Stable Rust is enough. Without a sanitizer (the default here: the project's own code has no `unsafe`)
# cargo fuzz passes only stable flags to rustc. AddressSanitizer needs the nightly-only `-Zsanitizer`, which
# stable accepts with RUSTC_BOOTSTRAP=1; this script sets it only then.
#
# cargo-fuzz is installed with `cargo install cargo-fuzz --locked` when missing. The committed seeds in
# fuzz/corpus/<target>/ are only read: the inputs libFuzzer finds go to fuzz/corpus-new/<target>/ (ignored by
# git, kept between runs so later runs build on them). A failing input is saved in fuzz/artifacts/<target>/;
# the end of the output shows how to reproduce it.
set -euo pipefail

cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-20}"
SANITIZER="${FUZZ_SANITIZER:-none}"
# opt-level 1 with 16 codegen units: the cold build takes ~2.5 min on 2 cores instead of ~3.5 min at
# opt-level 3 (and ~13 min with AddressSanitizer), and still runs 60–90 % as many inputs per second.
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${FUZZ_OPT_LEVEL:-1}"
CODEGEN_UNITS="${FUZZ_CODEGEN_UNITS:-16}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if [ "$SANITIZER" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
cargo fuzz --version

echo "==> cargo fmt --check (fuzz crate)"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

TARGETS="${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir fuzz)}"
FLAGS=(--fuzz-dir fuzz --sanitizer "$SANITIZER" --codegen-units "$CODEGEN_UNITS")

echo "==> building fuzz targets (sanitizer: $SANITIZER, opt-level: $CARGO_PROFILE_RELEASE_OPT_LEVEL)"
start=$(date +%s)
cargo fuzz build "${FLAGS[@]}"
echo "built in $(($(date +%s) - start)) s"

failed=()
for target in $TARGETS; do
    echo "==> fuzzing $target for ${SECONDS_PER_TARGET}s"
    mkdir -p "fuzz/corpus-new/$target"
    # libFuzzer writes new inputs into the first corpus folder only. -verbosity=0 drops the line per new
    # input (thousands), not the report of a failure.
    if ! cargo fuzz run "${FLAGS[@]}" "$target" "fuzz/corpus-new/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -verbosity=0 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing failed: ${failed[*]}; the inputs are in fuzz/artifacts/<target>/. Reproduce with:" >&2
    echo "  CARGO_PROFILE_RELEASE_OPT_LEVEL=$CARGO_PROFILE_RELEASE_OPT_LEVEL cargo fuzz run ${FLAGS[*]} <target> fuzz/artifacts/<target>/<file>" >&2
    exit 1
fi
echo "fuzzing passed: $(echo "$TARGETS" | wc -w) targets, ${SECONDS_PER_TARGET}s each, no failures"
