#!/usr/bin/env bash
# Installs what is missing, builds the module, and serves a WSGI script through Apache
# with it on http://127.0.0.1:8000 (Ctrl-C stops). Usage: scripts/serve.sh [script] [port]
set -euo pipefail
cd "$(dirname "$0")/.."

script="$(realpath "${1:-examples/hello.wsgi}")"
port="${2:-8000}"
[[ -f "$script" ]] || { echo "no such WSGI script: $script" >&2; exit 1; }

scripts/install-deps.sh
cargo build --release
module="$(pwd)/target/release/libmod_wsgi_rs.so"

# Apache's children run as www-data: serve a copy from a directory they can read.
root="$(mktemp -d "${TMPDIR:-/tmp}/mod_wsgi_rs-serve.XXXXXX")"
chmod 755 "$root"
mkdir -m 755 "$root/app"
install -m 644 "$script" "$root/app/$(basename "$script")"
modules="$(apxs -q LIBEXECDIR)"
cat > "$root/httpd.conf" <<CONF
ServerRoot $root
Listen 127.0.0.1:$port
ServerName 127.0.0.1
PidFile $root/httpd.pid
ErrorLog /dev/stderr
LogLevel info
DefaultRuntimeDir $root
Mutex file:$root default
LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule wsgi_module $module
User www-data
Group www-data
<Directory />
  Require all denied
</Directory>
<Directory $root/app>
  Require all granted
</Directory>
WSGIScriptAlias / $root/app/$(basename "$script")
CONF
echo "serving $script on http://127.0.0.1:$port/ (server root $root); Ctrl-C stops"
exec apache2 -f "$root/httpd.conf" -DFOREGROUND
