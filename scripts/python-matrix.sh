#!/usr/bin/env bash
# Builds the module against every CPython 3.9-3.13 this machine carries besides the
# default one (shared-library builds, as pyenv makes them with
# PYTHON_CONFIGURE_OPTS=--enable-shared) and runs the integration tests against each
# build. Apache's children run as www-data, which cannot read another user's home: each
# Python is copied first to a prefix it can read.
#
# Usage: scripts/python-matrix.sh
# Environment:
#   PYTHON_MATRIX_SOURCES  where the builds are (default: $PYENV_ROOT/versions, else
#                          ~/.pyenv/versions); each X.Y uses its newest X.Y.Z there
#   PYTHON_MATRIX_PREFIX   where they are copied (default /opt/mod_wsgi_rs-pythons)
#   PYTHON_MATRIX_VERSIONS the X.Y to build (default: 3.9 3.10 3.12 3.13)
#   PYTHON_MATRIX_FULL     versions that run every integration test (default 3.13); the
#                          others run a subset covering each area once
# Prints one line per version (tests passed, or why it was not run) and exits non-zero
# if a build or a test failed. A version that is not on the machine is reported, not
# failed: the machine decides which Pythons there are.
set -euo pipefail
cd "$(dirname "$0")/.."

sources="${PYTHON_MATRIX_SOURCES:-${PYENV_ROOT:-$HOME/.pyenv}/versions}"
prefix_root="${PYTHON_MATRIX_PREFIX:-/opt/mod_wsgi_rs-pythons}"
full=" ${PYTHON_MATRIX_FULL:-3.13} "
read -r -a versions <<<"${PYTHON_MATRIX_VERSIONS:-3.9 3.10 3.12 3.13}"
# A subset covering each area once, for the versions not run in full.
subset=(embedded_environ embedded_interpreters embedded_response daemon_basics daemon_lifecycle
    config_directives config_mod_wsgi6 auth_phases shared_store events own_gil)
# The full run leaves out the tests that need Debian's Flask, Django or prometheus_client
# (built for Debian's Python only) or mod_wsgi 6.1.1's venv (a Python 3.11 home).
stdlib_only() {
    ! grep -qE 'import (flask|django)|from (flask|django)|prometheus_client|mod_wsgi6-venv' "$1"
}

summary=()
status=0
for minor in "${versions[@]}"; do
    src=$(ls -d "$sources/$minor".* 2>/dev/null | grep -E "/$minor\.[0-9]+$" | sort -V | tail -1 || true)
    if [[ -z "$src" ]]; then
        summary+=("$minor: not on this machine (looked in $sources)")
        continue
    fi
    if ! ls "$src/lib/libpython$minor"*.so* >/dev/null 2>&1; then
        summary+=("$minor: $src has no shared libpython (build it with --enable-shared)")
        continue
    fi
    dest="$prefix_root/$minor"
    stamp="$dest/.copied-from"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$src" ]]; then
        rm -rf "$dest"
        mkdir -p "$prefix_root"
        cp -a "$src" "$dest"
        echo "$src" >"$stamp"
        chmod -R a+rX "$dest"
        chmod a+rx "$prefix_root"
    fi
    python="$dest/bin/python$minor"
    target="target/python$minor"
    echo "== Python $minor ($python)"
    if ! PYO3_PYTHON="$python" CARGO_TARGET_DIR="$target" cargo build -p mod_wsgi_rs --quiet; then
        summary+=("$minor: build FAILED")
        status=1
        continue
    fi
    tests=()
    if [[ "$full" == *" $minor "* ]]; then
        for f in tests/*.rs; do
            if stdlib_only "$f"; then tests+=("$(basename "$f" .rs)"); fi
        done
    else
        for t in "${subset[@]}"; do
            if [[ -f "tests/$t.rs" ]]; then tests+=("$t"); fi
        done
    fi
    args=()
    for t in "${tests[@]}"; do args+=(--test "$t"); done
    # In the version's own target directory, the tests find its module next to them, and
    # those that run Python themselves (a venv for WSGIPythonHome) run this one.
    if PYO3_PYTHON="$python" CARGO_TARGET_DIR="$target" \
        cargo test -p mod_wsgi_rs "${args[@]}" --quiet; then
        summary+=("$minor: ${#tests[@]} integration test files passed ($src)")
    else
        summary+=("$minor: integration tests FAILED ($src)")
        status=1
    fi
done
printf '%s\n' "== Python matrix" "${summary[@]}"
exit "$status"
