#!/usr/bin/env bash
# Installs what is missing, builds the module, and runs every test (unit tests of the pure
# crates and integration tests against a real apache2 under prefork, worker and event).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# `cargo test` does not rebuild the cdylib (no test links it), so build it first.
cargo build --workspace
cargo test --workspace
