#!/usr/bin/env bash
# Runs the engine's unit and integration tests, and the C ABI's unit tests, under Miri, the
# Rust interpreter that detects undefined behaviour: out-of-bounds and uninitialised reads,
# invalid pointer use, aliasing violations, data races, leaks.
#
#   bash scripts/miri.sh
#
# Needs rustup: it installs a nightly toolchain with the miri and rust-src components if
# they are missing. Runs from the repository root whatever the current directory, prints
# cargo's usual `test result:` lines and the time taken, and exits non-zero if any test
# failed or Miri reported anything. Every section runs even when an earlier one failed.
#
# Every check is on, Miri's aliasing model (Stacked Borrows) included. The engine reaches
# its arena and index through references to the few words it needs, never a slice of the
# whole mapping (`mapping.rs`), so the aliasing checks cost in proportion to the work.
#   - the unit tests (core/src) cover every `unsafe` block on small tables;
#   - the integration tests api and concurrency (core/tests) run with fewer operations and a
#     1 MiB cache (`cfg(miri)` in the tests); the few that must write many times the cache's
#     budget are ignored there, each marked with why. The memory tests all must, so they are
#     left to the native runs (core/tests/memory.rs says why);
#   - the C ABI's unit tests (ffi/src) call the entry points through raw pointers as C does
#     (a short options struct, the previous header's options and stats structs, a buffer that
#     holds the key, a listener that writes from inside its call).
# Isolation stays on: the tests need no host clock or files.
#
# Environment:
#   SLABCACHE_MIRI_TOOLCHAIN   the nightly toolchain to use (default: nightly).

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

toolchain="${SLABCACHE_MIRI_TOOLCHAIN:-nightly}"
# Miri's build of the engine and its sysroot stay apart from the normal builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$SLABCACHE_ROOT/target/miri}"
started=$SECONDS
status=0

# ---------------------------------------------------------------------------------------
section "setup: $toolchain toolchain with Miri"
ensure_cargo
if ! command -v rustup >/dev/null 2>&1; then
    echo "error: rustup is needed to install the $toolchain toolchain and Miri" >&2
    exit 1
fi
# `ensure_components` serves the default toolchain; Miri lives on a nightly one.
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    echo "installing the $toolchain toolchain"
    rustup toolchain install "$toolchain" --profile minimal --component miri,rust-src
else
    installed="$(rustup component list --toolchain "$toolchain" --installed)"
    missing=()
    for component in miri rust-src; do
        grep -q "^$component" <<<"$installed" || missing+=("$component")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "installing the ${missing[*]} component(s)"
        rustup component add --toolchain "$toolchain" "${missing[@]}"
    fi
fi
cargo "+$toolchain" miri --version
cargo "+$toolchain" miri setup

# ---------------------------------------------------------------------------------------
section "Miri: the engine's unit and integration tests"
MIRIFLAGS="${MIRIFLAGS:-}" cargo "+$toolchain" miri test -p slabcache --no-fail-fast \
    --lib --test api --test concurrency || status=1

# ---------------------------------------------------------------------------------------
section "Miri: the C ABI's unit tests"
MIRIFLAGS="${MIRIFLAGS:-}" cargo "+$toolchain" miri test -p slabcache-ffi --lib || status=1

echo "miri: finished in $((SECONDS - started)) s"
exit "$status"
