#!/usr/bin/env bash
# Tests the C ABI (ffi/, include/, examples/c/), installing the C tools it needs.
#
#   bash scripts/ffi-test.sh              # build, then every C and C++ test
#   bash scripts/ffi-test.sh --bench [N]  # build, then the get-hit benchmark, C against Rust,
#                                         # N rounds (default 5); no tests
#
# 1. `make -C ffi`: libslabcache.so, libslabcache.a and slabcache.pc as shipped, staged in
#    $CARGO_TARGET_DIR/libslabcache; then the same built with the `test-hooks` feature
#    (slabcache_test_panic, for the panic test) for the tests, staged apart.
# 2. The header: include/slabcache.h is what cbindgen generates (the Rust test
#    ffi/tests/header.rs); it compiles alone (C11, C99, C++17) and included twice (C and
#    C++); slabcache.hpp compiles alone.
# 3. ffi/tests/api.c (C11, every function and status of the cache, tags, hostile inputs),
#    ffi/tests/load.c (read-through: loaders, errors, a loader calling the library, 32
#    pthreads sharing one load), ffi/tests/backed.c (backed caches over C callbacks:
#    write-through, -around and -behind over a failing source, refreshes, tags, hostile
#    inputs) and ffi/tests/listener.c (listeners: events against the stats, a listener
#    calling the library, the maintenance thread, free racing it, 4 pthreads, the previous
#    header's options), each under AddressSanitizer + UndefinedBehaviorSanitizer linking
#    libslabcache.a, then under valgrind linking libslabcache.so; ffi/tests/threads.c (4
#    pthreads: exact CAS counters, no torn reads; writes from a pthread key destructor) and
#    ffi/tests/wrapper.cpp (the C++17 wrapper, its read-through and Backed included) under
#    ASan + UBSan. All with -Wall -Wextra -Werror -pedantic.
# 4. examples/c/example.c, built with pkg-config against the staged shared library, against
#    the static one, and against a `make -C ffi install` into a temporary prefix; each run.
#
# The C and C++ test programs print "test result: ok. N passed; 0 failed" lines, and so does
# this script for its own checks (builds, sanitizer and valgrind verdicts, header checks,
# example runs) at the end, for scripts/test.sh to add up. Every check runs even when an
# earlier one failed; the exit status is non-zero if any failed.
#
# Needs a Rust toolchain, gcc, g++ (with their sanitizer runtimes), make, pkg-config, objdump
# and valgrind; when one is missing it installs them with apt-get, as root or through
# password-less sudo.
# Environment: CC, CXX (default gcc, g++), CARGO_TARGET_DIR (default target/).
# On 2 cores: about 40 s from a cold target directory (the release build and cbindgen's),
# about 20 s warm; --bench 5 about 10 s more. Runs from the repository root whatever the
# current directory.

# The functions below run through `check`, which shellcheck does not follow.
# shellcheck disable=SC2317,SC2329
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
    echo "usage: bash scripts/ffi-test.sh [--bench [ROUNDS]]" >&2
}

bench_rounds=0
case "${1:-}" in
    "") ;;
    --bench)
        bench_rounds="${2:-5}"
        if ! [[ "$bench_rounds" =~ ^[0-9]+$ ]] || [ "$bench_rounds" -eq 0 ]; then
            echo "error: '$bench_rounds' is not a positive whole number of rounds" >&2
            usage
            exit 2
        fi
        ;;
    *)
        usage
        exit 2
        ;;
esac

CC="${CC:-gcc}"
CXX="${CXX:-g++}"
mkdir -p "${CARGO_TARGET_DIR:-target}"
CARGO_TARGET_DIR="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)"
export CARGO_TARGET_DIR
dist="$CARGO_TARGET_DIR/libslabcache"
work="$CARGO_TARGET_DIR/ffi-test"
test_dist="$work/libslabcache-test-hooks"
started=$SECONDS

c_flags=(-std=c11 -Wall -Wextra -Werror -pedantic -O1 -g -Iinclude -Iffi/tests)
cxx_flags=(-std=c++17 -Wall -Wextra -Werror -pedantic -O1 -g -Iinclude -Iffi/tests)
sanitize=("-fsanitize=address,undefined" -fno-sanitize-recover=all -fno-omit-frame-pointer)
export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1"

passed=0
failed=0
failures=()
# Runs a check (a command) and records its verdict.
check() {
    local name="$1"
    shift
    if "$@"; then
        echo "check $name ... ok"
        passed=$((passed + 1))
    else
        echo "check $name ... FAILED"
        failed=$((failed + 1))
        failures+=("$name")
    fi
}

# Prints the verdict of this script's own checks and exits with it.
finish() {
    section "summary (took $((SECONDS - started)) s)"
    if [ "$failed" -gt 0 ]; then
        printf 'failed: %s\n' "${failures[@]}"
    fi
    local verdict=ok
    [ "$failed" -eq 0 ] || verdict=FAILED
    echo "test result: $verdict. $passed passed; $failed failed"
    if [ "$failed" -eq 0 ]; then
        exit 0
    fi
    exit 1
}

# Installs what is missing of the C tools, with apt-get as root or through password-less sudo.
ensure_c_tools() {
    local missing=() tool package
    for tool in "$CC:gcc" "$CXX:g++" make:make pkg-config:pkg-config objdump:binutils \
        valgrind:valgrind; do
        package="${tool#*:}"
        tool="${tool%%:*}"
        command -v "$tool" >/dev/null 2>&1 || missing+=("$package")
    done
    [ "${#missing[@]}" -eq 0 ] && return
    local as_root=()
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    fi
    if { [ "$(id -u)" -eq 0 ] || [ "${#as_root[@]}" -gt 0 ]; } \
        && command -v apt-get >/dev/null 2>&1; then
        echo "installing ${missing[*]}"
        "${as_root[@]}" apt-get update -qq
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}"
    else
        echo "error: missing ${missing[*]}: install them (this script installs them itself" \
            "only as root or with password-less sudo, on a system with apt-get)" >&2
        exit 1
    fi
}

# pkg-config for a staged or installed tree.
pc() {
    local tree="$1"
    shift
    PKG_CONFIG_PATH="$tree/lib/pkgconfig" pkg-config "$@" slabcache
}

# Builds and stages the libraries: the shipped ones, then ($1 = test) the test-hooks ones.
build_libraries() {
    if [ "$1" = shipped ]; then
        make -C ffi --no-print-directory
    else
        make -C ffi --no-print-directory FEATURES=test-hooks DIST="$test_dist"
    fi
}

# The header is what cbindgen generates (its cargo output is kept unless it fails, so that
# scripts/test.sh counts that Rust test once, in its own cargo run).
header_is_generated() {
    local log="$work/header-test.log"
    if cargo test -p slabcache-ffi --test header >"$log" 2>&1; then
        return 0
    fi
    cat "$log"
    return 1
}

compile_header_alone() {
    local compiler="$1" language="$2" standard="$3" header="$4"
    "$compiler" "-std=$standard" -Wall -Wextra -Werror -pedantic -fsyntax-only -x "$language" \
        "$header"
}

# Compiles ($1 = c or c++) a test program $2 into $3 with the extra flags that follow.
compile() {
    local language="$1" source="$2" output="$3"
    shift 3
    if [ "$language" = c ]; then
        "$CC" "${c_flags[@]}" "$source" "$@" -o "$output"
    else
        "$CXX" "${cxx_flags[@]}" "$source" "$@" -o "$output"
    fi
}

# Compiles a test program against the static test-hooks library under ASan + UBSan, then
# runs it.
run_sanitized() {
    local language="$1" source="$2" name
    name="$(basename "${source%.*}")"
    # shellcheck disable=SC2046 # the libraries are separate words
    compile "$language" "$source" "$work/$name-asan" "${sanitize[@]}" -pthread \
        "-DSLABCACHE_EXPECTED_VERSION=\"$(pc "$test_dist" --modversion)\"" \
        "$test_dist/lib/libslabcache.a" $(pc "$test_dist" --variable=native_static_libs) &&
        "$work/$name-asan"
}

# Compiles a C test ($1) without sanitizers against the shared test-hooks library, then runs
# it under valgrind: any error, or a block lost (definitely, indirectly or possibly), fails
# it. What stays reachable at exit (std's backtrace symbol cache, after the panic test) is
# not a leak.
run_under_valgrind() {
    local source="$1" name
    name="$(basename "${source%.*}")"
    # shellcheck disable=SC2046 # pkg-config's flags are separate words
    compile c "$source" "$work/$name-valgrind" -pthread \
        "-DSLABCACHE_EXPECTED_VERSION=\"$(pc "$test_dist" --modversion)\"" \
        $(pc "$test_dist" --libs) "-Wl,-rpath,$(pc "$test_dist" --variable=libdir)" &&
        valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
            --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 \
            "$work/$name-valgrind"
}

# Builds the example against a staged or installed tree ($1), shared ($2 = shared: found
# through the rpath) or static, and runs it.
run_example() {
    local tree="$1" linkage="$2" output="$work/example-$2" link
    if [ "$linkage" = shared ]; then
        link="$(pc "$tree" --libs) -Wl,-rpath,$(pc "$tree" --variable=libdir)"
    else
        link="$(pc "$tree" --variable=libdir)/libslabcache.a"
        link+=" $(pc "$tree" --variable=native_static_libs)"
    fi
    # shellcheck disable=SC2046,SC2086 # pkg-config's flags and $link are separate words
    "$CC" -std=c11 -Wall -Wextra -Werror -pedantic -O2 examples/c/example.c \
        $(pc "$tree" --cflags) $link -o "$output" && "$output"
}

install_and_run_example() {
    local prefix="$work/prefix"
    rm -rf "$prefix"
    make -C ffi --no-print-directory install PREFIX="$prefix" >/dev/null &&
        run_example "$prefix" shared
}

# The get-hit benchmark: the C program through libslabcache.a, the Rust example through the
# engine directly, alternating, $bench_rounds rounds.
run_benchmark() {
    section "benchmark: a get hit from C (slabcache_get) and from Rust (Cache::get_into)"
    # shellcheck disable=SC2046 # pkg-config's flags are separate words
    "$CC" -std=c11 -Wall -Wextra -Werror -O2 ffi/bench/get_hit.c $(pc "$dist" --cflags) \
        "$dist/lib/libslabcache.a" $(pc "$dist" --variable=native_static_libs) \
        -o "$work/get_hit"
    cargo build --release -p slabcache-ffi --example get_hit
    local round results="$work/get_hit.results"
    : >"$results"
    for round in $(seq "$bench_rounds"); do
        echo "round $round:"
        "$work/get_hit" | tee -a "$results"
        "$CARGO_TARGET_DIR/release/examples/get_hit" | tee -a "$results"
    done
    # The overhead: the median over rounds of (C - Rust), each round's two runs taken back to
    # back, so that a slow spell of the shared machine falls on both sides of a difference.
    awk '
        /^C slabcache_get: median/ { c[++nc] = $4 }
        /^Rust Cache::get_into: median/ { r[++nr] = $4 }
        function median(a, n,    i, j, t) {
            for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
                t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
            }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        END {
            for (i = 1; i <= nc; i++) d[i] = c[i] - r[i]
            printf "summary over %d rounds: C %.1f ns/get, Rust %.1f ns/get (medians);", nc,
                median(c, nc), median(r, nr)
            printf " C overhead %.1f ns (median of per-round differences)\n", median(d, nc)
        }' "$results"
}

section "setup: Rust toolchain and C tools"
ensure_cargo
ensure_c_tools
cargo --version
"$CC" --version | head -n 1
"$CXX" --version | head -n 1
valgrind --version
mkdir -p "$work"

section "build: make -C ffi (the libraries as shipped)"
if ! build_libraries shipped; then
    check "make -C ffi builds the libraries" false
    finish
fi
ls -l "$dist/lib" "$dist/lib/pkgconfig"

if [ "$bench_rounds" -gt 0 ]; then
    run_benchmark
    exit
fi

check "make -C ffi stages libslabcache.so, libslabcache.a and slabcache.pc" \
    test -f "$dist/lib/libslabcache.so" -a -f "$dist/lib/libslabcache.a" \
    -a -f "$dist/lib/pkgconfig/slabcache.pc"

section "build: the libraries with the test-hooks feature, for the tests"
if ! build_libraries test; then
    check "make -C ffi FEATURES=test-hooks builds the test libraries" false
    finish
fi

section "header: generated, compiles alone, included twice"
check "include/slabcache.h is what cbindgen generates" header_is_generated
check "slabcache.h compiles alone as C11" compile_header_alone "$CC" c c11 include/slabcache.h
check "slabcache.h compiles alone as C99" compile_header_alone "$CC" c c99 include/slabcache.h
check "slabcache.h compiles alone as C++17" \
    compile_header_alone "$CXX" c++ c++17 include/slabcache.h
check "slabcache.hpp compiles alone as C++17" \
    compile_header_alone "$CXX" c++ c++17 include/slabcache.hpp
check "slabcache.h included twice (C11)" \
    compile c ffi/tests/include_twice.c /dev/null -c
check "slabcache.h and slabcache.hpp included twice (C++17)" \
    compile c++ ffi/tests/include_twice.cpp /dev/null -c

section "C11 API test under AddressSanitizer + UndefinedBehaviorSanitizer (libslabcache.a)"
check "api.c under ASan + UBSan" run_sanitized c ffi/tests/api.c

section "C11 API test under valgrind (libslabcache.so)"
check "api.c under valgrind" run_under_valgrind ffi/tests/api.c

section "C11 read-through test under ASan + UBSan, then valgrind"
check "load.c under ASan + UBSan" run_sanitized c ffi/tests/load.c
check "load.c under valgrind" run_under_valgrind ffi/tests/load.c

section "C11 backed cache test under ASan + UBSan, then valgrind"
check "backed.c under ASan + UBSan" run_sanitized c ffi/tests/backed.c
check "backed.c under valgrind" run_under_valgrind ffi/tests/backed.c

section "C11 listener test under ASan + UBSan, then valgrind"
check "listener.c under ASan + UBSan" run_sanitized c ffi/tests/listener.c
check "listener.c under valgrind" run_under_valgrind ffi/tests/listener.c

section "4-thread pthread test under ASan + UBSan"
check "threads.c under ASan + UBSan" run_sanitized c ffi/tests/threads.c

section "C++17 wrapper test under ASan + UBSan"
check "wrapper.cpp under ASan + UBSan" run_sanitized c++ ffi/tests/wrapper.cpp

section "example: examples/c/example.c through pkg-config"
check "the example, linked with the staged libslabcache.so" run_example "$dist" shared
check "the example, linked with the staged libslabcache.a" run_example "$dist" static
check "the example, built against make -C ffi install" install_and_run_example

finish
