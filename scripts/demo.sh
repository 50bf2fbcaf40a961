#!/usr/bin/env bash
# Builds slabcache in release mode and runs the demo workload.
#
#   bash scripts/demo.sh                  # 2 threads, 2 seconds, 64 MiB cache
#   bash scripts/demo.sh --seconds 5      # options go to `slabcache-bench demo`; see --help
#
# Needs only a Rust toolchain. Runs from the repository root whatever the current directory.

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_cargo
cargo run --release -p slabcache-bench -- demo "$@"
