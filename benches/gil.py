"""Own-GIL bench: two application groups running CPU-bound Python in one process, with
WSGIPerInterpreterGIL Off (one GIL for the process) and On (a GIL per sub-interpreter).

Each server runs the same app in two sub-interpreters (/a and /b, application-group a and
b): every request does a fixed amount of pure-Python arithmetic (about 5 ms here). Daemon
mode: one process, threads=4 (/d/a, /d/b). Embedded mode: one event-MPM child with 8
threads (/a, /b), so that both groups share one process there too. Two wrk processes load
/a and /b at once (c=4 each, c=8 in all); the total req/s is compared between Off and On
for each module, servers interleaved within each round, medians over the rounds.

Modules: ours (--ours), and C mod_wsgi 6.1.1 built against the same CPython (--theirs6,
with --theirs6-home, the venv it was installed in) when given. Needs CPython 3.12 or later
for On to mean anything. Run through benches/gil.sh.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import free_ports  # noqa: E402

APP = '''
import mod_wsgi
def application(environ, start_response):
    x = 0
    for i in range(@TURNS@):
        x += i * i % 7
    body = ("%s %d" % (mod_wsgi.application_group, x)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def conf(root, modules, module, home, port, gil, mode, daemon_threads):
    base = f"{root}/{port}"
    lines = [
        f"ServerRoot {base}",
        f"Listen 127.0.0.1:{port}",
        "ServerName 127.0.0.1",
        f"PidFile {base}/httpd.pid",
        f"ErrorLog {base}/error.log",
        "LogLevel warn",
        f"DefaultRuntimeDir {base}",
        f"Mutex file:{base} default",
        f"LoadModule mpm_event_module {modules}/mod_mpm_event.so",
        "StartServers 1",
        "ServerLimit 1",
        "MinSpareThreads 1",
        "MaxSpareThreads 8",
        "ThreadsPerChild 8",
        "MaxRequestWorkers 8",
        f"LoadModule authz_core_module {modules}/mod_authz_core.so",
        f"LoadModule wsgi_module {module}",
        "User www-data",
        "Group www-data",
        f"<Directory {root}>",
        "  Require all granted",
        "</Directory>",
        f"WSGIPerInterpreterGIL {gil}",
    ]
    if home:
        lines.append(f"WSGIPythonHome {home}")
    if mode == "daemon":
        lines.append(f"WSGIDaemonProcess g processes=1 threads={daemon_threads}"
                     " display-name=(wsgi:gil)")
        for group in ("a", "b"):
            lines.append(f"WSGIScriptAlias /d/{group} {root}/app/cpu.wsgi"
                         f" process-group=g application-group={group}")
    else:
        for group in ("a", "b"):
            lines.append(f"WSGIScriptAlias /{group} {root}/app/cpu.wsgi"
                         f" application-group={group}")
    return "\n".join(lines) + "\n"


def wrk_rps(url, conc, secs):
    return subprocess.Popen(
        ["wrk", "-t1", f"-c{conc}", f"-d{secs}s", "--timeout", "10s", url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def parse(out, url):
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        sys.exit(f"{url}: {bad[1]} non-2xx responses")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])


def start(root, key, config):
    base = f"{root}/{key}"
    os.makedirs(base, exist_ok=True)
    path = f"{base}/httpd.conf"
    with open(path, "w") as f:
        f.write(config)
    subprocess.run(["apache2", "-f", path, "-k", "start"], check=True)
    return path


def stop(path):
    subprocess.run(["apache2", "-f", path, "-k", "stop"], check=False)


def wait_ready(url):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{url} never answered")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--theirs6")
    ap.add_argument("--theirs6-home")
    ap.add_argument("--modules", required=True)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--turns", type=int, default=100_000)
    ap.add_argument("--daemon-threads", type=int, default=4)
    ap.add_argument("--modes", default="daemon embedded")
    args = ap.parse_args()

    root = tempfile.mkdtemp(prefix="gil-bench-")
    os.chmod(root, 0o755)
    os.makedirs(f"{root}/app")
    with open(f"{root}/app/cpu.wsgi", "w") as f:
        f.write(APP.replace("@TURNS@", str(args.turns)))
    os.chmod(f"{root}/app", 0o755)

    modules = [("rs", args.ours, None)]
    if args.theirs6:
        modules.append(("c6", args.theirs6, args.theirs6_home))
    servers = {}
    ports = free_ports(len(modules) * 4)
    modes = args.modes.split()
    results = {}
    try:
        for mod, path, home in modules:
            for mode in modes:
                for gil in ("Off", "On"):
                    port = ports.pop()
                    servers[(mod, mode, gil)] = (port, start(root, port, conf(
                        root, args.modules, path, home, port, gil, mode, args.daemon_threads)))
                    results[(mod, mode, gil)] = []
        for (mod, mode, gil), (port, _) in servers.items():
            prefix = "/d" if mode == "daemon" else ""
            for group in ("a", "b"):
                wait_ready(f"http://127.0.0.1:{port}{prefix}/{group}")
        for rnd in range(args.rounds):
            for key, (port, _) in servers.items():
                prefix = "/d" if key[1] == "daemon" else ""
                urls = [f"http://127.0.0.1:{port}{prefix}/{g}" for g in ("a", "b")]
                runs = [wrk_rps(u, 4, args.secs) for u in urls]
                total = sum(parse(r.communicate()[0], u) for r, u in zip(runs, urls))
                results[key].append(total)
                print(f"round {rnd + 1} {key[0]} {key[1]} GIL {key[2]}: {total:.0f} req/s",
                      file=sys.stderr)
    finally:
        for _, path in servers.values():
            stop(path)
        time.sleep(1)
        shutil.rmtree(root, ignore_errors=True)

    print(f"\n{args.turns} turns per request, c=8 (4 on each group), daemon threads="
          f"{args.daemon_threads}, "
          f"{args.secs} s x {args.rounds} rounds, medians\n")
    print("| module | mode | GIL Off req/s | GIL On req/s | On / Off |")
    print("| --- | --- | --- | --- | --- |")
    for mod, _, _ in modules:
        for mode in modes:
            off = statistics.median(results[(mod, mode, "Off")])
            on = statistics.median(results[(mod, mode, "On")])
            print(f"| {mod} | {mode} | {off:.0f} | {on:.0f} | {on / off:.2f}x |")


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
