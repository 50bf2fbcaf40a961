#!/usr/bin/env bash
# Instructions per `Cache::get_into` hit, counted by callgrind: a cache without and one with
# the hot-key tracker (`core/examples/get_instructions.rs` says what it reads).
#
#   bash scripts/get-instructions.sh
#
# Needs valgrind. Runs from the repository root whatever the current directory.

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_cargo
command -v valgrind >/dev/null || { echo "error: valgrind not found" >&2; exit 1; }
cargo build --release -q -p slabcache --example get_instructions
program=target/release/examples/get_instructions
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Instructions of a run of ROUNDS rounds, with any further arguments.
instructions() {
    valgrind --tool=callgrind --callgrind-out-file="$scratch/out" "$program" "$@" \
        >/dev/null 2>"$scratch/log"
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$scratch/log"
}

for tracking in "" --track-hot-keys; do
    one=$(instructions 1 $tracking)
    three=$(instructions 3 $tracking)
    printf 'get_into %-18s %s instructions\n' "${tracking:-(no tracking)}" \
        "$(awk -v a="$one" -v b="$three" 'BEGIN { printf "%.1f", (b - a) / (2 * 1048576) }')"
done
