#!/usr/bin/env bash
# Runs mod_wsgi's own integration suite (tests/wsgi/*.sh of a mod_wsgi 6.x checkout) against
# this module and against mod_wsgi 6.x's own module, one Apache per suite, and prints a
# per-suite table (Markdown). Not run by CI: it needs the checkout and mod_wsgi-express.
#
# Usage: scripts/upstream-suite.sh UPSTREAM_CHECKOUT [SUITE...] [--adapt] [--only rs|mod_wsgi]
#        [--timeout SECONDS] [--express PATH] [--user NAME] [--logs DIR] [--keep]
#
# mod_wsgi-express 6.1.1 generates each configuration; for this module its LoadModule line
# is pointed at target/release/libmod_wsgi_rs.so. The default express is
# /opt/mod_wsgi6-venv/bin/mod_wsgi-express, made with
#   /usr/bin/python3 -m venv /opt/mod_wsgi6-venv && /opt/mod_wsgi6-venv/bin/pip install mod-wsgi==6.1.1
# (the directory must be readable by www-data, Apache's children load the venv's Python).
# A checkout: git clone https://github.com/GrahamDumpleton/mod_wsgi /tmp/mod_wsgi
# --adapt leaves out what this module does not have yet and every suite's configuration
# has: WSGIDispatchScript becomes the static alias options it returns, and express's
# catch-all handler (WSGIHandlerScript and its preload), which no suite reaches, is dropped.
# MODULE_SO=path skips the build and tests that module instead.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

if [[ $# -eq 0 || $1 == -h || $1 == --help ]]; then
    exec /usr/bin/python3 "$here/scripts/upstream_suite.py" --help
fi

module="${MODULE_SO:-}"
if [[ -z "$module" ]]; then
    (cd "$here" && cargo build --release --quiet -p mod_wsgi_rs)
    module="$here/target/release/libmod_wsgi_rs.so"
fi
exec /usr/bin/python3 "$here/scripts/upstream_suite.py" --module "$module" "$@"
