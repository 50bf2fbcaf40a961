#!/usr/bin/env bash
# Runs the criterion bench of the engine's hot paths and prints a table of medians.
#
#   bash scripts/bench.sh                 # all benches (about a minute)
#   bash scripts/bench.sh get_hit         # only those whose name contains get_hit
#
# Needs a Rust toolchain and Python 3 (for the summary table only).

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_cargo
cargo bench -p slabcache-bench --bench engine -- "$@"

if ! command -v python3 >/dev/null 2>&1; then
    echo "(python3 not found: no summary table; see the criterion output above)"
    exit 0
fi

section "median time per operation"
cargo metadata --format-version 1 --no-deps | python3 -c '
import json, pathlib, sys
target = pathlib.Path(json.load(sys.stdin)["target_directory"])
root = target / "criterion"
order = ["get_hit_vec", "get_hit_into", "get_miss", "insert_update", "compare_and_swap"]
patterns = ["engine_hot-1k", "engine_zipf-0.99", "engine_uniform"]
def rank(p):
    bench, group = p.parent.parent.name, p.parent.parent.parent.name
    return (patterns.index(group) if group in patterns else len(patterns),
            order.index(bench) if bench in order else len(order), str(p))
rows = []
for est in sorted(root.glob("engine_*/*/new/estimates.json"), key=rank):
    median = json.loads(est.read_text())["median"]
    lo = median["confidence_interval"]["lower_bound"]
    hi = median["confidence_interval"]["upper_bound"]
    group = est.parent.parent.parent.name.removeprefix("engine_")
    rows.append((group, est.parent.parent.name, median["point_estimate"], lo, hi))
if not rows:
    sys.exit("no estimates found under %s" % root)
print("%-11s %-18s %12s   %s" % ("access", "bench", "median ns", "95% interval"))
for group, name, point, lo, hi in rows:
    print("%-11s %-18s %12.1f   [%.1f, %.1f]" % (group, name, point, lo, hi))'
