#!/usr/bin/env bash
# Side-by-side load bench of mod_wsgi_rs, Debian's C mod_wsgi 4.9 (libapache2-mod-wsgi-py3)
# and C mod_wsgi 6.1 (pip's mod-wsgi, built against this Apache and Debian's python3), embedded
# and daemon mode, with Apache's static file handler as the ceiling; see benches/load.py for
# what runs and what is reported.
#
#   benches/load.sh [seconds-per-run] [rounds]     (as root; installs wrk and both C modules)
#   BENCH_APPS="hello upload" benches/load.sh 5 2  (some apps only)
#   BENCH_SMOKE=1 benches/load.sh                  (1 s per target: checks that it runs)
#   MOD_WSGI6_VENV=/path benches/load.sh           (where mod_wsgi 6.1 lives or is installed;
#                                                   default /opt/mod_wsgi6-venv)
#
# mod_wsgi 6.1 is installed into its venv (readable by www-data) when missing, except in smoke
# mode, which only uses it when already there. If it cannot be built, the run goes on with
# the two other modules and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

for p in wrk libapache2-mod-wsgi-py3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done

venv="${MOD_WSGI6_VENV:-/opt/mod_wsgi6-venv}"
mod_wsgi6() {
    "$venv/bin/mod_wsgi-express" module-location 2>/dev/null
}
if ! mod_wsgi6 >/dev/null && [[ -z "${BENCH_SMOKE:-}" ]]; then
    echo "bench: installing mod_wsgi 6.1.1 into $venv" >&2
    for p in apache2-dev python3-dev python3-venv; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null \
            || true
    done
    # Debian's python3: the module links the same libpython as the other two.
    (umask 022 && /usr/bin/python3 -m venv "$venv" && chmod 755 "$venv" \
        && "$venv/bin/pip" install -q mod-wsgi==6.1.1) >&2 \
        || echo "bench: could not build mod_wsgi 6.1.1 in $venv" >&2
fi
theirs6=()
if so6="$(mod_wsgi6)"; then
    theirs6=(--theirs6 "$so6")
elif [[ -n "${BENCH_SMOKE:-}" ]]; then
    echo "bench: mod_wsgi 6.1 is not in $venv (smoke mode does not build it);" \
        "measuring mod_wsgi_rs and C mod_wsgi 4.9 only" >&2
else
    echo "bench: no mod_wsgi 6.1 in $venv; measuring mod_wsgi_rs and C mod_wsgi 4.9 only" >&2
fi

cargo build --release -q
modules="$(apxs -q LIBEXECDIR)"
args=(--secs "${1:-10}" --rounds "${2:-3}")
if [[ -n "${BENCH_SMOKE:-}" ]]; then args+=(--smoke); fi
if [[ -n "${BENCH_APPS:-}" ]]; then args+=(--apps "$BENCH_APPS"); fi
exec /usr/bin/python3 benches/load.py "${args[@]}" \
    --ours "$(pwd)/target/release/libmod_wsgi_rs.so" \
    --theirs "$modules/mod_wsgi.so" "${theirs6[@]}" --modules "$modules"
