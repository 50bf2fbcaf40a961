# Helpers shared by the scripts in this folder and by .ci/run. Source it; do not run it.
#
# After sourcing, the working directory is the repository root, whatever it was before.

# The repository root: the parent of the folder this file lives in.
SLABCACHE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$SLABCACHE_ROOT"

# Prints a visible section header.
section() {
    printf '\n==> %s\n' "$*"
}

# Makes `cargo` available: a fresh rustup install puts it in ~/.cargo/bin, which a
# non-login shell may not have on its PATH yet.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found; install a Rust toolchain from https://rustup.rs" >&2
        exit 1
    fi
}

# Installs rustup components (e.g. `clippy rustfmt`) that the active toolchain lacks.
ensure_components() {
    local component probe
    for component in "$@"; do
        case "$component" in
            clippy) probe="cargo clippy --version" ;;
            rustfmt) probe="cargo fmt --version" ;;
            *) probe="false" ;;
        esac
        if ! $probe >/dev/null 2>&1; then
            if command -v rustup >/dev/null 2>&1; then
                echo "installing the $component component"
                rustup component add "$component"
            else
                echo "error: $component is missing and rustup is not available to install it" >&2
                exit 1
            fi
        fi
    done
}
