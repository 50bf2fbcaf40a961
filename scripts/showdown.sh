#!/usr/bin/env bash
# Builds slabcache in release mode and runs the showdown: throughput, memory, hit ratio and
# a short cache stampede of slabcache next to moka, quick_cache, mini_moka, stretto and a
# locked LRU, measured in one run on this machine, as one report. Takes about two minutes.
#
#   bash scripts/showdown.sh
#   bash scripts/showdown.sh --json showdown.json   # options go to `slabcache-bench showdown`
#
# Needs only a Rust toolchain. Where the Python module is installed (bash scripts/python-test.sh
# puts it in target/python-venv), the summary also compares its get hit with the Python
# caches'. Runs from the repository root whatever the current directory.

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_cargo
# Where the Python module is installed (scripts/python-test.sh builds it into
# target/python-venv), the showdown adds its get hit next to the Python caches: install them.
if [ -x target/python-venv/bin/python ]; then
    target/python-venv/bin/python -m pip install -q --disable-pip-version-check \
        -r python/benchmarks/requirements.txt
fi
cargo run --release -p slabcache-bench -- showdown "$@"
