#!/usr/bin/env bash
# Builds slabcache in release mode and runs the showdown: throughput, memory, hit ratio and
# a short cache stampede of slabcache next to moka, quick_cache, mini_moka, stretto and a
# locked LRU, measured in one run on this machine, as one report. Takes about two minutes.
#
#   bash scripts/showdown.sh
#   bash scripts/showdown.sh --json showdown.json   # options go to `slabcache-bench showdown`
#
# Needs only a Rust toolchain. Runs from the repository root whatever the current directory.

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_cargo
cargo run --release -p slabcache-bench -- showdown "$@"
