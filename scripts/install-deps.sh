#!/usr/bin/env bash
# Installs what building and testing mod_wsgi_rs needs on Debian/Ubuntu (run as root).
# Only missing packages are installed, so a second run is quick.
set -euo pipefail

packages=(apache2 apache2-dev python3-dev libclang-dev python3-flask python3-django python3-venv
    wrk libapache2-mod-wsgi-py3 python3-prometheus-client redis-server)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    # Debian starts the stock apache2 service on install; it is not ours to keep running.
    # The same for redis-server: the tests start their own on free ports.
    if command -v service >/dev/null; then
        service apache2 stop >/dev/null 2>&1 || true
        service redis-server stop >/dev/null 2>&1 || true
    fi
fi
if ! command -v cargo >/dev/null; then
    echo "cargo (Rust toolchain) is required: https://rustup.rs" >&2
    exit 1
fi
