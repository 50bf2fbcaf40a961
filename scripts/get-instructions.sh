#!/usr/bin/env bash
# Instructions per `Cache::get_into` hit, counted by callgrind: a cache without and one with
# the hot-key tracker (`core/examples/get_instructions.rs` says what it reads); then per
# `Cache::insert` of a new key at the entry limit and per in-place update
# (`core/examples/write_instructions.rs`).
#
#   bash scripts/get-instructions.sh
#
# Needs valgrind. Runs from the repository root whatever the current directory.

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_cargo
command -v valgrind >/dev/null || { echo "error: valgrind not found" >&2; exit 1; }
cargo build --release -q -p slabcache --example get_instructions --example write_instructions
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# Instructions of a run of EXAMPLE for ROUNDS rounds, with any further arguments.
instructions() {
    local program=target/release/examples/$1
    shift
    valgrind --tool=callgrind --callgrind-out-file="$scratch/out" "$program" "$@" \
        >/dev/null 2>"$scratch/log"
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$scratch/log"
}

# Instructions per operation of EXAMPLE with ARGUMENT: the difference between 3 rounds and 1,
# over the 2 rounds of OPERATIONS each.
per_operation() {
    local one three
    one=$(instructions "$1" 1 $3)
    three=$(instructions "$1" 3 $3)
    awk -v a="$one" -v b="$three" -v n="$2" 'BEGIN { printf "%.1f", (b - a) / (2 * n) }'
}

for tracking in "" --track-hot-keys; do
    printf 'get_into %-18s %s instructions\n' "${tracking:-(no tracking)}" \
        "$(per_operation get_instructions 1048576 "$tracking")"
done
for mode in new update; do
    printf 'insert   %-18s %s instructions\n' "($mode key)" \
        "$(per_operation write_instructions 262144 "$mode")"
done
