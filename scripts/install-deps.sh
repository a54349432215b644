#!/usr/bin/env bash
# Installs what building mod_wsgi_rs and serving with it need on Debian/Ubuntu; with
# --test, also what its tests and benchmarks use (scripts/test.sh passes it). Installing
# needs root; only missing packages are installed, so a second run is quick and changes
# nothing.
# Usage: scripts/install-deps.sh [--test]
set -euo pipefail

build=(apache2 apache2-dev python3-dev libclang-dev)
test=(python3-venv python3-flask python3-django python3-prometheus-client python3-pastedeploy wrk openssl curl
    libapache2-mod-wsgi-py3 redis-server)
# Services Debian starts when their package is installed.
services=(apache2 redis-server)

packages=("${build[@]}")
case "${1:-}" in
    --test) packages+=("${test[@]}") ;;
    "") ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

service_running() {
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        systemctl is-active --quiet "$1"
    elif command -v service >/dev/null; then
        service "$1" status >/dev/null 2>&1
    else
        return 1
    fi
}

service_stop() {
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
        systemctl stop "$1" >/dev/null 2>&1 || true
    else
        service "$1" stop >/dev/null 2>&1 || true
    fi
}

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    # A service that runs now is the user's: left alone, whatever the install does.
    was_running=()
    for s in "${services[@]}"; do
        if service_running "$s"; then was_running+=("$s"); fi
    done
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    status=0
    { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; } || status=$?
    # One the install started (Debian starts apache2 and redis-server on install) is not
    # ours to keep running: the tests start their own on free ports.
    for s in "${services[@]}"; do
        if [[ " ${was_running[*]} " != *" $s "* ]] && service_running "$s"; then
            echo "stopping $s (started by its installation)"
            service_stop "$s"
        fi
    done
    ((status == 0)) || exit "$status"
fi
# The tests check that configurations mod_wsgi-express 6.1.1 writes start with this
# module: mod_wsgi 6.1.1 from PyPI, in a venv of Debian's Python that www-data can read.
if [[ "${1:-}" == --test ]]; then
    venv="${MOD_WSGI6_VENV:-/opt/mod_wsgi6-venv}"
    if [[ ! -x "$venv/bin/mod_wsgi-express" ]]; then
        echo "installing mod_wsgi 6.1.1 into $venv (for the configuration tests)"
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install -q mod-wsgi==6.1.1
        chmod -R a+rX "$venv"
    fi
    # The telemetry tests send to mod_wsgi 6.1's own ingester and read its view.
    telemetry_venv="${MOD_WSGI_TELEMETRY_VENV:-/opt/mod_wsgi-telemetry-venv}"
    if [[ ! -x "$telemetry_venv/bin/mod_wsgi-telemetry" ]]; then
        echo "installing mod-wsgi-telemetry 1.1.0 into $telemetry_venv (for the telemetry tests)"
        /usr/bin/python3 -m venv "$telemetry_venv"
        "$telemetry_venv/bin/pip" install -q mod-wsgi-telemetry==1.1.0
        chmod -R a+rX "$telemetry_venv"
    fi
fi
if ! command -v cargo >/dev/null; then
    echo "cargo (Rust toolchain) is required: https://rustup.rs" >&2
    exit 1
fi
