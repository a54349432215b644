#!/usr/bin/env bash
# Installs what is missing, builds the module, and runs every test (unit tests of the pure
# crates and integration tests against a real apache2 under prefork, worker and event),
# then the same against the module built for each other CPython the machine has.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test
# Lints run where the toolchain has them (components cannot be fetched offline).
if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --all -- --check
else
    echo "note: rustfmt not installed; format check skipped"
fi
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --workspace --all-targets -- -D warnings
else
    echo "note: clippy not installed; lint skipped"
fi
# `cargo test` does not rebuild the cdylib (no test links it), so build it first.
cargo build --workspace
cargo test --workspace
# The pure parts of the mod_wsgi-suite runner (the runner itself needs a mod_wsgi checkout).
python3 -m unittest -q scripts/upstream_suite_test.py
# The module built against every other CPython 3.9-3.13 on the machine, each run against
# the integration tests (all of them on 3.13, a subset on the others).
scripts/python-matrix.sh
# The load bench in smoke mode (1 s per target, every app, both modules): timings are not
# checked, but every target must answer correctly under load, so the bench cannot rot.
BENCH_SMOKE=1 benches/load.sh
