#!/usr/bin/env bash
# Own-GIL bench: WSGIPerInterpreterGIL Off against On, two application groups running
# CPU-bound Python in one daemon process and in one embedded child, ours and C mod_wsgi
# 6.1.1 built against the same CPython; see benches/gil.py for what runs.
#
#   benches/gil.sh [seconds-per-run] [rounds]          (as root)
#   GIL_PYTHON=/path/bin/python3.13 benches/gil.sh     (a CPython 3.12+ with a shared
#        libpython that www-data can read; default: the first of 3.12, 3.13 that
#        scripts/python-matrix.sh copied to /opt/mod_wsgi_rs-pythons)
#   MOD_WSGI6_GIL_VENV=/path benches/gil.sh            (where mod_wsgi 6.1.1 for that
#        Python lives or is installed; default /opt/mod_wsgi6-pyXY-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

python="${GIL_PYTHON:-}"
if [[ -z "$python" ]]; then
    for v in 3.12 3.13; do
        candidate="/opt/mod_wsgi_rs-pythons/$v/bin/python$v"
        if [[ -x "$candidate" ]]; then python="$candidate"; break; fi
    done
fi
if [[ -z "$python" ]]; then
    echo "gil bench: no CPython 3.12 or later; run scripts/python-matrix.sh or set GIL_PYTHON" >&2
    exit 1
fi
minor="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
dpkg-query -W -f='${Status}' wrk 2>/dev/null | grep -q "install ok installed" \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

venv="${MOD_WSGI6_GIL_VENV:-/opt/mod_wsgi6-py${minor/./}-venv}"
if ! "$venv/bin/mod_wsgi-express" module-location >/dev/null 2>&1; then
    echo "gil bench: installing mod_wsgi 6.1.1 for Python $minor into $venv" >&2
    (umask 022 && "$python" -m venv "$venv" && "$venv/bin/pip" install -q mod-wsgi==6.1.1) >&2 \
        || echo "gil bench: could not build mod_wsgi 6.1.1 in $venv" >&2
fi
theirs=()
if so="$("$venv/bin/mod_wsgi-express" module-location 2>/dev/null)"; then
    theirs=(--theirs6 "$so" --theirs6-home "$venv")
fi

target="target/python$minor"
PYO3_PYTHON="$python" CARGO_TARGET_DIR="$target" cargo build --release -q -p mod_wsgi_rs
exec /usr/bin/python3 benches/gil.py --secs "${1:-10}" --rounds "${2:-3}" \
    --ours "$(pwd)/$target/release/libmod_wsgi_rs.so" "${theirs[@]}" \
    --modules "$(apxs -q LIBEXECDIR)"
