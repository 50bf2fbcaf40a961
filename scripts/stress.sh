#!/usr/bin/env bash
# Runs the long, history-checked stress test (core/tests/stress/, ignored by plain `cargo
# test`): first optimised for SECONDS, then under AddressSanitizer and ThreadSanitizer with
# the nightly toolchain, which it installs (with rust-src, for ThreadSanitizer's instrumented
# std) if missing.
#
#   bash scripts/stress.sh            # 60 s optimised, then 15 s under each sanitizer
#   bash scripts/stress.sh 300        # 300 s optimised
#
# Environment:
#   SLABCACHE_SANITIZER_SECS=N          seconds of each sanitizer run (default 15)
#   SLABCACHE_SANITIZERS="address"      which sanitizers to run (default "address thread";
#                                       empty for none)
#   SLABCACHE_STRESS_SEED=N             repeat a run's operation mix (the test prints its seed)
#
# On 2 cores, from a warm build: the optimised run takes SECONDS plus a few; each sanitizer
# run its seconds plus about one more. From a cold start add about 30 s of build for the
# optimised run, 30 s for AddressSanitizer and 3 minutes for ThreadSanitizer (it compiles std).
# Every part runs even when an earlier one failed; the exit status is non-zero if any failed.
# Runs from the repository root whatever the current directory.

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

seconds="${1:-60}"
sanitizer_seconds="${SLABCACHE_SANITIZER_SECS:-15}"
sanitizers="${SLABCACHE_SANITIZERS-address thread}"
for number in "$seconds" "$sanitizer_seconds"; do
    if ! [[ "$number" =~ ^[0-9]+$ ]] || [ "$number" -eq 0 ]; then
        echo "error: '$number' is not a positive whole number of seconds" >&2
        echo "usage: bash scripts/stress.sh [SECONDS]" >&2
        exit 2
    fi
done
target_base="${CARGO_TARGET_DIR:-target}"

status=0
summary=()
# Runs a part, timing it, and records how it went; a failure fails the script at the end.
timed() {
    local name="$1"
    shift
    local start=$SECONDS outcome=passed
    "$@" || { outcome=FAILED; status=1; }
    local took=$((SECONDS - start))
    echo "$name: $outcome, took ${took} s"
    summary+=("$name: $outcome, ${took} s")
}

# The nightly toolchain with rust-src, for the sanitizers.
ensure_nightly() {
    local installed
    if ! installed="$(rustup +nightly component list --installed 2>/dev/null)"; then
        echo "installing the nightly toolchain (for the sanitizers)"
        rustup toolchain install nightly --profile minimal --component rust-src
    elif ! grep -q '^rust-src' <<<"$installed"; then
        echo "installing the rust-src component of nightly (ThreadSanitizer builds std)"
        rustup component add rust-src --toolchain nightly
    fi
}

# Runs the stress test with the nightly toolchain under sanitizer $1, for the host target.
# Extra cargo arguments follow.
# shellcheck disable=SC2329 # invoked through `timed`
run_sanitized() {
    local sanitizer="$1"
    shift
    # --target keeps RUSTFLAGS off build scripts and proc macros; frame pointers and line
    # tables make the reports' stacks readable.
    RUSTFLAGS="-Zsanitizer=$sanitizer -Cforce-frame-pointers=yes -Cdebuginfo=line-tables-only" \
        CARGO_TARGET_DIR="$target_base/sanitizer-$sanitizer" \
        SLABCACHE_STRESS_SECS="$sanitizer_seconds" \
        cargo +nightly test "$@" --release -p slabcache --test stress --target "$host" \
        -- --ignored --nocapture
}

section "setup: Rust toolchain"
ensure_cargo
cargo --version

section "stress: optimised, ${seconds} s"
timed "optimised (${seconds} s)" \
    env SLABCACHE_STRESS_SECS="$seconds" \
    cargo test --release -p slabcache --test stress -- --ignored --nocapture

if [ -n "$sanitizers" ]; then
    section "setup: nightly toolchain for the sanitizers"
    if ! command -v rustup >/dev/null 2>&1; then
        echo "error: the sanitizers need rustup to install the nightly toolchain" >&2
        exit 1
    fi
    ensure_nightly
    cargo +nightly --version
    host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
    case "$host" in
        x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu | x86_64-apple-darwin | aarch64-apple-darwin) ;;
        *)
            echo "error: no AddressSanitizer and ThreadSanitizer support for $host here" >&2
            exit 1
            ;;
    esac
fi

for sanitizer in $sanitizers; do
    case "$sanitizer" in
        address)
            section "stress: AddressSanitizer, ${sanitizer_seconds} s"
            timed "AddressSanitizer (${sanitizer_seconds} s)" run_sanitized address
            ;;
        thread)
            # An uninstrumented std hides its synchronisation from ThreadSanitizer, which then
            # reports races that are not there: build std instrumented too.
            section "stress: ThreadSanitizer, ${sanitizer_seconds} s (std rebuilt instrumented)"
            timed "ThreadSanitizer (${sanitizer_seconds} s)" run_sanitized thread -Zbuild-std
            ;;
        *)
            echo "error: unknown sanitizer '$sanitizer' in SLABCACHE_SANITIZERS (address, thread)" >&2
            status=1
            ;;
    esac
done

section "summary"
printf '%s\n' "${summary[@]}"
exit "$status"
