# Sourced by the scripts that need the Python module: `ensure_python_env` makes a virtual
# environment in target/python-venv (created on first use, kept between runs, never needing
# anything installed by hand), installs the tools the tests use, and builds and installs the
# module from python/ exactly as a user's `pip install ./python` does. Needs common.sh first.

SLABCACHE_VENV="$SLABCACHE_ROOT/target/python-venv"
SLABCACHE_PYTHON="$SLABCACHE_VENV/bin/python"

# Finds a CPython 3.9 or later.
find_python() {
    local candidate
    for candidate in python3 python3.13 python3.12 python3.11 python3.10 python3.9; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# Creates the environment if needed, installs `$@` (pip requirement arguments) into it, then
# builds and installs the module.
ensure_python_env() {
    local python
    if [ ! -x "$SLABCACHE_PYTHON" ]; then
        if ! python="$(find_python)"; then
            if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
                apt-get install -y -q python3 python3-venv python3-pip >/dev/null
                python="$(find_python)"
            else
                echo "error: the Python module needs CPython 3.9 or later (python3)" >&2
                return 1
            fi
        fi
        if ! "$python" -m venv "$SLABCACHE_VENV" 2>/dev/null; then
            # Debian's python3 ships venv separately.
            if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
                apt-get install -y -q python3-venv >/dev/null
            fi
            rm -rf "$SLABCACHE_VENV"
            "$python" -m venv "$SLABCACHE_VENV"
        fi
    fi
    "$SLABCACHE_PYTHON" -m pip install -q --disable-pip-version-check "$@"
    # What a user runs: pip builds the wheel with maturin (fetched into an isolated build
    # environment) and installs it.
    "$SLABCACHE_PYTHON" -m pip install -q --disable-pip-version-check --force-reinstall \
        --no-deps "$SLABCACHE_ROOT/python"
}
