#!/usr/bin/env bash
# Soak test of mod_wsgi_rs: one Apache (event MPM) serving an app embedded and in a daemon
# group under mixed load for SOAK_SECONDS, with a graceful restart every minute; reports
# requests, unexpected answers and the RSS of the parent, children and daemons each
# minute. See benches/soak.py for what runs and what is reported.
#
#   benches/soak.sh                      (as root; 600 s)
#   SOAK_SECONDS=120 benches/soak.sh     (shorter)
#   SOAK_CLIENTS=4 SOAK_RESTART_EVERY=30 benches/soak.sh
#
# Exits non-zero when a request failed or got an unexpected status, or Apache died.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q
seconds="${SOAK_SECONDS:-600}"
# soak.py bounds itself; this bounds it again (start-up, draining and stopping included).
exec timeout --kill-after=60 "$((seconds + 300))" /usr/bin/python3 benches/soak.py \
    --seconds "$seconds" \
    --restart-every "${SOAK_RESTART_EVERY:-60}" \
    --clients "${SOAK_CLIENTS:-6}" \
    --module "$(pwd)/target/release/libmod_wsgi_rs.so" \
    --modules "$(apxs -q LIBEXECDIR)"
