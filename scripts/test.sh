#!/usr/bin/env bash
# Runs every test the project has, installing what it needs first.
#
#   bash scripts/test.sh            every test: what CI runs (about 30 minutes on 2 cores)
#   bash scripts/test.sh --quick    the contributor's loop: the workspace's tests in a debug
#                                   build, the core's examples and the C tests; no release
#                                   pass, no loom, Miri, fuzzing or stress (a few minutes)
#
# Needs a Rust toolchain (rustup) and a C compiler (scripts/ffi-test.sh installs the rest of
# the C tools when it runs as root with apt-get). Runs from the repository root whatever the
# current directory. The last line
# printed adds up every runner's results ("tests: N passed, N failed"), which CI reads.
#
# Every section runs even when an earlier one failed (and cargo runs every test binary, not
# just those before the first failure), so one run reports every failure; the exit status
# is non-zero if anything failed.
#
# After the tests come the machine checks of the concurrency (see docs/verification.md):
# the loom models, the core's tests under Miri, each fuzz target for a bounded time,
# and the history-checking stress test, plain and under sanitizers. They install what they
# need (nightly components, cargo-fuzz) and take about 20 minutes on 2 cores.
#
# Environment:
#   SLABCACHE_SKIP_RELEASE_TESTS=1   skip the second, optimised pass over the Rust tests.
#   SLABCACHE_SKIP_VERIFICATION=1    skip loom, Miri, fuzzing and the stress test.
#   SLABCACHE_FUZZ_SECS, SLABCACHE_STRESS_SECS
#                                    seconds per fuzz target and for the stress test
#                                    (default 60 each).

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "${1:-}" in
    "") ;;
    --quick)
        SLABCACHE_SKIP_RELEASE_TESTS=1
        SLABCACHE_SKIP_VERIFICATION=1
        ;;
    *)
        echo "usage: bash scripts/test.sh [--quick]" >&2
        exit 2
        ;;
esac

status=0
# Every test runner's output also goes to this log, so the totals can be added up at the end.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
logged() {
    "$@" 2>&1 | tee -a "$log"
    return "${PIPESTATUS[0]}"
}

# ---------------------------------------------------------------------------------------
section "setup: Rust toolchain"
ensure_cargo
ensure_components clippy rustfmt
cargo --version
rustc --version

# ---------------------------------------------------------------------------------------
section "Rust: unit, integration and doc tests (debug build, debug assertions on)"
logged cargo test --workspace --all-features --no-fail-fast || status=1

# ---------------------------------------------------------------------------------------
# The examples are documentation that runs: each prints what it shows, checks what it can,
# and exits non-zero when that fails (a few seconds each).
section "Rust: the core's examples (core/examples)"
for example in core/examples/*.rs; do
    logged cargo run -p slabcache --example "$(basename "$example" .rs)" || status=1
done

# ---------------------------------------------------------------------------------------
if [ "${SLABCACHE_SKIP_RELEASE_TESTS:-0}" != "1" ]; then
    # Optimised code runs the concurrency tests at full speed, where races are likeliest.
    section "Rust: unit and integration tests (release build)"
    logged cargo test --workspace --all-features --release --tests --no-fail-fast || status=1
fi

# ---------------------------------------------------------------------------------------
# C and C++: libslabcache and include/slabcache.h, under sanitizers and valgrind. It installs
# the C tools it needs (gcc, g++, make, pkg-config, valgrind) where it may.
logged bash scripts/ffi-test.sh || status=1

# ---------------------------------------------------------------------------------------
# Python: the module built and installed by pip into a virtual environment this creates
# (target/python-venv), its pytest suite, and the type stubs checked against it.
logged bash scripts/python-test.sh || status=1

# ---------------------------------------------------------------------------------------
if [ "${SLABCACHE_SKIP_VERIFICATION:-0}" != "1" ]; then
    logged bash scripts/loom.sh || status=1
    logged bash scripts/miri.sh || status=1
    logged bash scripts/fuzz.sh "${SLABCACHE_FUZZ_SECS:-60}" || status=1
    logged bash scripts/stress.sh "${SLABCACHE_STRESS_SECS:-60}" || status=1
fi

# The last line: every runner's results added up ("N passed, N failed"), which CI reads.
count() {
    grep -Eo "^test result: [A-Za-z]+\. [0-9]+ passed; [0-9]+ failed" "$log" \
        | awk -v field="$1" '{ n += $field } END { print n + 0 }'
}
echo "tests: $(count 4) passed, $(count 6) failed"
exit "$status"
