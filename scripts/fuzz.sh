#!/usr/bin/env bash
# Fuzzes the engine with cargo-fuzz (libFuzzer): every target in fuzz/fuzz_targets/ runs for
# SECONDS (default 60) from the seeds in fuzz/corpus/<target>/. See fuzz/README.md.
#
#   bash scripts/fuzz.sh [SECONDS]
#
# Installs what it needs: a nightly toolchain (cargo-fuzz needs one) and cargo-fuzz. Runs from
# the repository root whatever the current directory, and leaves the git tree as it found it:
# the inputs libFuzzer adds go to a temporary folder, and a finding's reproducer to
# fuzz/artifacts/<target>/, which git ignores.
#
# Prints one line per target in the shape scripts/test.sh adds up ("test result: ok. 1 passed;
# 0 failed", then the executions), and for a finding, its reproducer and the commands that
# replay and print it. Exits non-zero if any target found something (a failed check, a crash,
# a hang of more than 20 seconds on one input) or did not build.
#
# Time on the 2-core development machine: installing cargo-fuzz ~45 s (once), building the
# targets 60 to 90 s from clean, then SECONDS per target.

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bash scripts/fuzz.sh [SECONDS]   (SECONDS per target, a positive integer)" >&2
    exit 2
fi

# ---------------------------------------------------------------------------------------
section "setup: nightly toolchain and cargo-fuzz"
ensure_cargo
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
cargo +nightly --version
cargo fuzz --version

# ---------------------------------------------------------------------------------------
section "build: fuzz targets (release, debug assertions, AddressSanitizer)"
cargo +nightly fuzz build

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0

for target in $(cargo +nightly fuzz list); do
    section "fuzz: $target for ${seconds}s"
    # The committed seeds are read; new inputs go to the first folder, a temporary one.
    mkdir -p "$work/corpus-$target"
    log="$work/$target.log"
    set +e
    cargo +nightly fuzz run "$target" "$work/corpus-$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=20 -print_final_stats=1 2>&1 \
        | tee "$log" | grep --line-buffered -E '^#[0-9]+[[:space:]]+(INITED|pulse|DONE)'
    run_status="${PIPESTATUS[0]}"
    set -e

    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    if [ -z "$executions" ]; then
        # A crash report has no final stats; the last status line has the count.
        executions="$(grep -Eo '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')"
    fi
    executions="${executions:-0}"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"

    if [ "$run_status" -eq 0 ]; then
        echo "test result: ok. 1 passed; 0 failed; fuzz target $target: $executions executions" \
            "in ${seconds}s (${rate:-?}/s)"
    else
        status=1
        # The failed check (a panic's message) or the sanitizer's report, without the stacks;
        # the whole output is kept beside the reproducer.
        mkdir -p "fuzz/artifacts/$target"
        cp "$log" "fuzz/artifacts/$target/last-failure.log"
        grep -E -A3 "panicked at|==[0-9]+==ERROR|^SUMMARY" "$log" \
            | grep -vE '^ +(#?[0-9]+[: ]|at )|^stack backtrace' | head -n 30 || true
        echo "full output: fuzz/artifacts/$target/last-failure.log"
        reproducer="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        if [ -n "$reproducer" ]; then
            echo "reproducer: $reproducer"
            echo "replay it:  cargo +nightly fuzz run $target $reproducer"
            echo "print it:   cargo +nightly fuzz fmt $target $reproducer"
            echo "shrink it:  cargo +nightly fuzz tmin $target $reproducer"
        else
            echo "no reproducer written (cargo fuzz run exited with status $run_status)"
        fi
        echo "test result: FAILED. 0 passed; 1 failed; fuzz target $target: $executions" \
            "executions before the finding"
    fi
done

exit "$status"
