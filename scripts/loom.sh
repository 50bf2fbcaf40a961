#!/usr/bin/env bash
# Runs the loom models of the engine's concurrency protocols (core/src/loom_models.rs):
# every interleaving of the models' threads up to LOOM_MAX_PREEMPTIONS preemptions (default
# 2), against the engine's own code built with loom's atomics (cfg slabcache_loom).
#
#   bash scripts/loom.sh
#
# Builds in target/loom, apart from the normal build, since the cfg changes every type in
# `sync`. Prints cargo's "test result" line, which scripts/test.sh adds to its totals.

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_cargo
section "loom models (LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2}, release build)"
start=$SECONDS
RUSTFLAGS="--cfg slabcache_loom" CARGO_TARGET_DIR=target/loom \
    LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}" \
    cargo test -p slabcache --release --lib loom_models
echo "loom models: $((SECONDS - start)) s"
