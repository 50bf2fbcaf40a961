#!/usr/bin/env bash
# The Python module's tests: builds and installs it with pip into target/python-venv (see
# python-env.sh), runs the pytest suite in python/tests, and checks the type stubs against
# the module with mypy's stubtest. About two minutes, most of it the release build.
#
#   bash scripts/python-test.sh [pytest arguments]
#
# The last line is a summary in cargo's format, which test.sh adds to its totals.

set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=scripts/python-env.sh
. "$SLABCACHE_ROOT/scripts/python-env.sh"

section "Python: build and install the module (pip install ./python)"
ensure_cargo
ensure_python_env pytest mypy

status=0
section "Python: pytest (python/tests)"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
# From outside the source tree, so the tests import the installed module, not python/.
(cd "$SLABCACHE_ROOT/target" && "$SLABCACHE_PYTHON" -m pytest -q -p no:cacheprovider \
    --junitxml="$report" "$SLABCACHE_ROOT/python/tests" "$@") || status=1

section "Python: type stubs match the module (mypy stubtest)"
if (cd "$SLABCACHE_ROOT/target" && "$SLABCACHE_PYTHON" -m mypy.stubtest slabcache); then
    stubs=1
else
    stubs=0
    status=1
fi

"$SLABCACHE_PYTHON" - "$report" "$stubs" <<'PY'
import sys
import xml.etree.ElementTree as ET

suites = ET.parse(sys.argv[1]).getroot()
suites = [suites] if suites.tag == "testsuite" else list(suites)
tests = sum(int(s.get("tests", 0)) for s in suites)
failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
stubs_ok = int(sys.argv[2])
passed = tests - failed - skipped + stubs_ok
failed += 1 - stubs_ok
print(f"test result: {'ok' if failed == 0 else 'FAILED'}. {passed} passed; {failed} failed")
PY
exit "$status"
