#!/usr/bin/env bash
# Side-by-side load bench of mod_wsgi_rs and Debian's C mod_wsgi (libapache2-mod-wsgi-py3),
# embedded and daemon mode, with Apache's static file handler as the ceiling; see
# benches/load.py for what runs and what is reported.
#
#   benches/load.sh [seconds-per-run] [rounds]     (as root; installs wrk and the C module)
#   BENCH_APPS="hello upload" benches/load.sh 5 2  (some apps only)
#   BENCH_SMOKE=1 benches/load.sh                  (1 s per target: checks that it runs)
set -euo pipefail
cd "$(dirname "$0")/.."

for p in wrk libapache2-mod-wsgi-py3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done
cargo build --release -q
modules="$(apxs -q LIBEXECDIR)"
args=(--secs "${1:-10}" --rounds "${2:-3}")
if [[ -n "${BENCH_SMOKE:-}" ]]; then args+=(--smoke); fi
if [[ -n "${BENCH_APPS:-}" ]]; then args+=(--apps "$BENCH_APPS"); fi
exec /usr/bin/python3 benches/load.py "${args[@]}" \
    --ours "$(pwd)/target/release/libmod_wsgi_rs.so" \
    --theirs "$modules/mod_wsgi.so" --modules "$modules"
