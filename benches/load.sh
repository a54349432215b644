#!/usr/bin/env bash
# Side-by-side load bench, embedded and daemon mode: the same Apache config (event MPM)
# with this module and with Debian's C mod_wsgi (libapache2-mod-wsgi-py3), driven by wrk
# over 127.0.0.1 in interleaved rounds. Prints req/s and latency per target and the ratio.
# Paths: /hello and /big run embedded; /d/hello and /d/big in a daemon group
# (processes=2 threads=15, application-group=%{GLOBAL}).
#
#   benches/load.sh [seconds-per-run] [rounds]     (as root; needs wrk)
#   BENCH_SMOKE=1 benches/load.sh                  (quick run that cannot rot)
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-10}"
rounds="${2:-3}"
if [[ -n "${BENCH_SMOKE:-}" ]]; then secs=1; rounds=1; fi
for p in wrk libapache2-mod-wsgi-py3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
done
cargo build --release -q
modules="$(apxs -q LIBEXECDIR)"
root="$(mktemp -d "${TMPDIR:-/tmp}/mod_wsgi_rs-bench.XXXXXX")"
chmod 755 "$root"
mkdir -m 755 "$root/app"
cat > "$root/app/hello.wsgi" <<'PY'
def application(environ, start_response):
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [body]
PY
cat > "$root/app/big.wsgi" <<'PY'
BODY = b"x" * (1024 * 1024)
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [BODY]
PY
chmod 644 "$root"/app/*.wsgi

declare -A MODULE=([rs]="$(pwd)/target/release/libmod_wsgi_rs.so" [c]="$modules/mod_wsgi.so")
declare -A PORT=([rs]=18781 [c]=18782)
start() {
    local name=$1 dir="$root/$1"
    mkdir -p "$dir"
    cat > "$dir/httpd.conf" <<CONF
ServerRoot $dir
Listen 127.0.0.1:${PORT[$name]}
ServerName 127.0.0.1
PidFile $dir/httpd.pid
ErrorLog $dir/error.log
LogLevel warn
DefaultRuntimeDir $dir
Mutex file:$dir default
LoadModule mpm_event_module $modules/mod_mpm_event.so
StartServers 2
ServerLimit 4
ThreadsPerChild 25
MaxRequestWorkers 100
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule wsgi_module ${MODULE[$name]}
User www-data
Group www-data
<Directory $root/app>
  Require all granted
</Directory>
WSGIScriptAlias /hello $root/app/hello.wsgi
WSGIScriptAlias /big $root/app/big.wsgi
WSGIDaemonProcess bench processes=2 threads=15
WSGIScriptAlias /d/hello $root/app/hello.wsgi process-group=bench application-group=%{GLOBAL}
WSGIScriptAlias /d/big $root/app/big.wsgi process-group=bench application-group=%{GLOBAL}
CONF
    setsid apache2 -f "$dir/httpd.conf" -DFOREGROUND &
}
stop() { kill -TERM "$(cat "$root/$1/httpd.pid")" 2>/dev/null || true; }
trap 'stop rs; stop c; sleep 2; rm -rf "$root"' EXIT
start rs
start c
sleep 2
# BENCH_PATHS="d/hello d/big" limits the run to some paths.
read -r -a paths <<<"${BENCH_PATHS:-hello big d/hello d/big}"
for t in rs c; do
    for path in "${paths[@]}"; do curl -sf "http://127.0.0.1:${PORT[$t]}/$path" >/dev/null; done
done

printf "%-6s %-4s %-8s %12s %10s %10s\n" round conc path "req/s" "p50" "p99"
declare -A total
for round in $(seq "$rounds"); do
    for path in "${paths[@]}"; do
        for conc in 4 32; do
            for t in rs c; do
                out="$(wrk -t2 -c"$conc" -d"${secs}s" --latency "http://127.0.0.1:${PORT[$t]}/$path")"
                rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
                p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
                p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
                printf "%-6s %-4s %-8s %12s %10s %10s  %s\n" "$round" "$conc" "$path" "$rps" "$p50" "$p99" "$t"
                key="$path-$conc-$t"
                total[$key]="$(awk -v a="${total[$key]:-0}" -v b="$rps" 'BEGIN {print a + b}')"
            done
        done
    done
done
echo
echo "ratio mod_wsgi_rs / C mod_wsgi (mean req/s over $rounds rounds):"
for path in "${paths[@]}"; do
    for conc in 4 32; do
        awk -v a="${total[$path-$conc-rs]}" -v b="${total[$path-$conc-c]}" -v p="$path" -v c="$conc" \
            'BEGIN {printf "  %-8s c=%-3s %.2fx\n", p, c, (b > 0 ? a / b : 0)}'
    done
done
