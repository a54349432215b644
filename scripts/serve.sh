#!/usr/bin/env bash
# Installs what is missing, builds (release), and serves a WSGI script through Apache with
# wsgi-express on http://127.0.0.1:8000 (Ctrl-C stops and removes the temporary copy).
# Usage: scripts/serve.sh [script] [more wsgi-express options, e.g. --port 9000]
# WSGI_EXPRESS=path/to/wsgi-express serves with that build instead of installing and
# building.
set -euo pipefail

given="$(dirname "$0")/../examples/hello.wsgi"
if [[ $# -gt 0 && $1 != -* ]]; then
    given="$1"
    shift
fi
# Resolved before leaving the caller's directory.
script="$(realpath -m "$given")"
[[ -f "$script" ]] || { echo "no such WSGI script: $given" >&2; exit 1; }
cd "$(dirname "$0")/.."

express="${WSGI_EXPRESS:-}"
if [[ -z "$express" ]]; then
    scripts/install-deps.sh
    cargo build --release --workspace
    express=target/release/wsgi-express
fi

# Apache's children run as www-data: serve a copy from a directory they can read, and
# remove it however this script ends.
app="$(mktemp -d "${TMPDIR:-/tmp}/mod_wsgi_rs-serve.XXXXXX")"
trap 'rm -rf "$app"' EXIT
chmod 755 "$app"
install -m 644 "$script" "$app/$(basename "$script")"

# Not exec: this shell stays to clean up. Later options win, so "$@" can override these.
"$express" start-server "$app/$(basename "$script")" \
    --host 127.0.0.1 --port 8000 --log-to-terminal "$@" &
server=$!
# Ctrl-C, kill or a closed terminal stop Apache (which stops its children and daemons);
# the shell then waits for it to finish before cleaning up.
trap 'kill -TERM "$server" 2>/dev/null || true' INT TERM HUP
status=0
while kill -0 "$server" 2>/dev/null; do
    wait "$server" || status=$?
done
exit "$status"
