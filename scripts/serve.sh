#!/usr/bin/env bash
# Installs what is missing, builds (release), and serves a WSGI script through Apache with
# wsgi-express on http://127.0.0.1:8000 (Ctrl-C stops).
# Usage: scripts/serve.sh [script] [more wsgi-express options]
set -euo pipefail
cd "$(dirname "$0")/.."

script="$(realpath "${1:-examples/hello.wsgi}")"
shift || true
[[ -f "$script" ]] || { echo "no such WSGI script: $script" >&2; exit 1; }

scripts/install-deps.sh
cargo build --release --workspace

# Apache's children run as www-data: serve a copy from a directory they can read.
app="$(mktemp -d "${TMPDIR:-/tmp}/mod_wsgi_rs-serve.XXXXXX")"
chmod 755 "$app"
install -m 644 "$script" "$app/$(basename "$script")"
exec target/release/wsgi-express start-server "$app/$(basename "$script")" \
    --host 127.0.0.1 --port 8000 --log-to-terminal "$@"
