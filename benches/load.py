"""Side-by-side load bench: mod_wsgi_rs, Debian's C mod_wsgi 4.9 and C mod_wsgi 6.1 in one run.

One Apache server per module (rs, c4, and c6 when --theirs6 is given) with the same generated
config (event MPM) except the LoadModule line.
Each serves every app embedded (/APP) and in a daemon group (/d/APP, processes=2
threads=15, application-group=%{GLOBAL}); Apache's own static file handler serves the
same bytes (/hello.txt, /big.bin, /file.bin) as the ceiling. wrk drives every target
over 127.0.0.1, targets interleaved within each round. Reported: median req/s, p50 and p99
latency over the rounds, socket errors wrk saw (a connection closed while wrk waited for a
response; seen now and then under c=32 for every module), each of
our targets' ratios to each C mod_wsgi in the same mode and to the static handler (the full
table, then a summary with one row per app, concurrency and mode), and the peak RSS (VmHWM) of
each server's Apache children and daemon processes. A non-2xx response stops the run.

"recycle" measures recycling under load: the hello app with a 0.3 s import, preloaded in
two processes=1 threads=15 daemon groups, one steady (/s/recycle) and one recycled every
2000 requests (/r/recycle); compare p99 and errors of each module's recycled group with
its steady one (C mod_wsgi stops the process, then starts and imports the new one).

Run through benches/load.sh (it builds the module and installs wrk and the C modules).
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

APPS = {
    "hello": '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, World!"]
''',
    "big": '''
BODY = b"x" * (1024 * 1024)
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [BODY]
''',
    "upload": '''
def application(environ, start_response):
    stream = environ["wsgi.input"]
    total = 0
    while True:
        block = stream.read(65536)
        if not block:
            break
        total += len(block)
    body = str(total).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
''',
    "file": '''
import os
PATH = "@ROOT@/static/file.bin"
def application(environ, start_response):
    f = open(PATH, "rb")
    size = os.fstat(f.fileno()).st_size
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](f, 65536)
''',
    "stream": '''
CHUNK = b"x" * 64
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (CHUNK for _ in range(1000))
''',
    "recycle": '''
import time
time.sleep(0.3)
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, World!"]
''',
    "sleep": '''
import time
def application(environ, start_response):
    time.sleep(0.05)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
''',
}

# app -> (concurrencies, static file standing in for it, expected body length)
RUNS = {
    "hello": ((4, 32), "hello.txt", 13),
    "big": ((4, 32), "big.bin", 1024 * 1024),
    "upload": ((4, 32), None, 7),
    "file": ((4, 32), "file.bin", 10 * 1024 * 1024),
    "stream": ((4, 32), None, 64 * 1000),
    "sleep": ((64,), None, 2),
    "recycle": ((8,), None, 13),
}

# The recycle app's groups: target suffix -> (URL prefix, extra WSGIDaemonProcess options).
RECYCLE_GROUPS = {"steady": ("/s", ""), "recycled": ("/r", " maximum-requests=2000")}

UPLOAD_LUA = '''
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
'''


def free_ports(count):
    """`count` distinct 127.0.0.1 ports nothing listens on now (two runs never share one)."""
    held = [socket.socket() for _ in range(count)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def conf(root, modules, module, port):
    lines = [
        f"ServerRoot {root}/{port}",
        f"Listen 127.0.0.1:{port}",
        "ServerName 127.0.0.1",
        f"PidFile {root}/{port}/httpd.pid",
        f"ErrorLog {root}/{port}/error.log",
        "LogLevel warn",
        f"DefaultRuntimeDir {root}/{port}",
        f"Mutex file:{root}/{port} default",
        f"LoadModule mpm_event_module {modules}/mod_mpm_event.so",
        # Four children from the start and none stopped for being idle: a child
        # stopped by the MPM closes its keep-alive connections mid-run.
        "StartServers 4",
        "ServerLimit 4",
        "MinSpareThreads 25",
        "MaxSpareThreads 100",
        "ThreadsPerChild 25",
        "MaxRequestWorkers 100",
        f"LoadModule authz_core_module {modules}/mod_authz_core.so",
        f"LoadModule wsgi_module {module}",
        "User www-data",
        "Group www-data",
        "EnableSendfile On",
        "WSGIEnableSendfile On",
        f"DocumentRoot {root}/static",
        # Debian's stock apache2.conf: without it Apache looks for /.htaccess and
        # /tmp/.htaccess on every request, for every target alike.
        "<Directory />",
        "  AllowOverride None",
        "  Require all denied",
        "</Directory>",
        f"<Directory {root}>",
        "  Require all granted",
        "  AllowOverride None",
        "</Directory>",
        "WSGIDaemonProcess bench processes=2 threads=15 display-name=(wsgi:bench)",
    ]
    for name, (prefix, options) in RECYCLE_GROUPS.items():
        lines.append(f"WSGIDaemonProcess {name} processes=1 threads=15"
                     f" display-name=(wsgi:{name}){options}")
        lines.append(f"WSGIScriptAlias {prefix}/recycle {root}/app/recycle.wsgi"
                     f" process-group={name} application-group=%{{GLOBAL}}")
    for app in APPS:
        if app == "recycle":
            continue
        lines.append(f"WSGIScriptAlias /{app} {root}/app/{app}.wsgi")
        lines.append(
            f"WSGIScriptAlias /d/{app} {root}/app/{app}.wsgi"
            " process-group=bench application-group=%{GLOBAL}"
        )
    return "\n".join(lines) + "\n"


def millis(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m[2]]
    return float(m[1]) * scale


def wrk(url, conc, secs, lua):
    cmd = ["wrk", "-t2", f"-c{conc}", f"-d{secs}s", "--latency", "--timeout", "10s"]
    if lua:
        cmd += ["-s", lua]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    p50 = millis(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1])
    p99 = millis(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1])
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    problem = None
    if bad:
        problem = f"{bad[1]} non-2xx responses"
    errs = 0
    if errors:
        errs = sum(int(n) for n in re.findall(r"\d+", errors[1]))
        print(f"  wrk {url} c={conc}: socket errors: {errors[1]}", file=sys.stderr)
    return rps, p50, p99, problem, errs


def peak_rss(pid_file):
    """Largest VmHWM (KiB) among the server's children and among its daemon processes."""
    with open(pid_file) as f:
        parent = f.read().strip()
    children, daemons = [0], [0]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            if ppid != parent:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/status") as f:
                hwm = int(re.search(r"VmHWM:\s+(\d+)", f.read())[1])
        except (OSError, TypeError, IndexError):
            continue
        (daemons if cmdline.startswith(b"(wsgi:") else children).append(hwm)
    return max(children), max(daemons)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--apps", default=" ".join(RUNS))
    ap.add_argument("--ours", required=True)
    ap.add_argument("--theirs", required=True, help="C mod_wsgi 4.9 (Debian's)")
    ap.add_argument("--theirs6", help="C mod_wsgi 6.1 (optional)")
    ap.add_argument("--modules", required=True)
    args = ap.parse_args()
    apps = args.apps.split()
    if args.smoke:
        args.secs, args.rounds = 1, 1

    root = tempfile.mkdtemp(prefix="mod_wsgi_rs-bench.")
    os.chmod(root, 0o755)
    for d in ("app", "static"):
        os.mkdir(f"{root}/{d}", 0o755)
    for app, source in APPS.items():
        with open(f"{root}/app/{app}.wsgi", "w") as f:
            f.write(source.replace("@ROOT@", root))
    for name, size in (("hello.txt", 13), ("big.bin", 1 << 20), ("file.bin", 10 << 20)):
        with open(f"{root}/static/{name}", "wb") as f:
            f.write(b"Hello, World!" if size == 13 else b"x" * size)
    for d in ("app", "static"):
        for name in os.listdir(f"{root}/{d}"):
            os.chmod(f"{root}/{d}/{name}", 0o644)
    lua = f"{root}/upload.lua"
    with open(lua, "w") as f:
        f.write(UPLOAD_LUA)

    ports = free_ports(3)
    servers = {"rs": (args.ours, ports[0]), "c4": (args.theirs, ports[1])}
    if args.theirs6:
        servers["c6"] = (args.theirs6, ports[2])
    for name, (module, _) in servers.items():
        print(f"{name}: {module}", flush=True)
    procs = []
    try:
        for name, (module, port) in servers.items():
            os.mkdir(f"{root}/{port}")
            with open(f"{root}/{port}/httpd.conf", "w") as f:
                f.write(conf(root, args.modules, module, port))
            procs.append(subprocess.Popen(
                ["apache2", "-f", f"{root}/{port}/httpd.conf", "-DFOREGROUND"],
                start_new_session=True))
        time.sleep(2)
        for (name, (_, port)), proc in zip(servers.items(), procs):
            if proc.poll() is not None:
                # Typically the port is taken: the bench would measure someone else's server.
                sys.exit(f"bench: the {name} Apache exited at startup (is 127.0.0.1:{port} "
                         "already in use?)")
        targets = check_targets(servers, apps)
        results = {}
        for rnd in range(1, args.rounds + 1):
            for app in apps:
                concs, _, _ = RUNS[app]
                for conc in concs:
                    for target, url in targets[app]:
                        rps, p50, p99, problem, errs = wrk(
                            url, conc, args.secs, lua if app == "upload" else None)
                        print(f"round {rnd} {app:7} c={conc:<3} {target:12} {rps:10.1f} req/s"
                              f"  p50 {p50:8.2f} ms  p99 {p99:8.2f} ms"
                              + (f"  socket errors {errs}" if errs else ""), flush=True)
                        if errs and target != "static":
                            port = servers[server_of(target)][1]
                            with open(f"{root}/{port}/error.log") as f:
                                logged = [l for l in f if ":notice]" not in l]
                            sys.stderr.write("".join(logged[-10:]))
                        if problem:
                            port = servers[server_of(target)][1]
                            with open(f"{root}/{port}/error.log") as f:
                                sys.stderr.write("".join(f.readlines()[-20:]))
                            sys.exit(f"bench: {target} /{app} at c={conc}: {problem}")
                        results.setdefault((app, conc, target), []).append((rps, p50, p99, errs))
        report(results, apps, targets, args, servers, root)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            p.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


# The static handler's targets are served by Debian's C mod_wsgi's Apache.
STATIC_SERVER = "c4"


def server_of(target):
    """The server a target runs on: "rs-daemon" -> "rs", "static" -> STATIC_SERVER."""
    return STATIC_SERVER if target == "static" else target.split("-", 1)[0]


def check_targets(servers, apps):
    """Every target answers 200 with the expected body before anything is timed."""
    targets = {}
    for app in apps:
        _, static, length = RUNS[app]
        urls = []
        if static:
            urls.append(("static", f"http://127.0.0.1:{servers[STATIC_SERVER][1]}/{static}"))
        for name, (_, port) in servers.items():
            if app == "recycle":
                for group, (prefix, _) in RECYCLE_GROUPS.items():
                    urls.append((f"{name}-{group}", f"http://127.0.0.1:{port}{prefix}/{app}"))
                continue
            urls.append((f"{name}-embedded", f"http://127.0.0.1:{port}/{app}"))
            urls.append((f"{name}-daemon", f"http://127.0.0.1:{port}/d/{app}"))
        for target, url in urls:
            data = b"x" * (1 << 20) if app == "upload" else None
            with urllib.request.urlopen(url, data=data, timeout=30) as resp:
                body = resp.read()
            if resp.status != 200 or len(body) != length:
                sys.exit(f"bench: {target} {url}: status {resp.status}, {len(body)} bytes")
        targets[app] = urls
    return targets


def report(results, apps, targets, args, servers, root):
    theirs = [name for name in servers if name != "rs"]
    print(f"\nmedians over {args.rounds} round(s) of {args.secs} s; ratios: our req/s over "
          "each C mod_wsgi's in the same mode, and over the static handler's\n")
    print("| app | c | target | req/s | p50 ms | p99 ms | socket errors | "
          + " | ".join(f"vs {name}" for name in theirs) + " | vs static |")
    print("| --- " * (8 + len(theirs)) + "|")
    summary = []
    for app in apps:
        for conc in RUNS[app][0]:
            med = {}
            for target, _ in targets[app]:
                runs = results[(app, conc, target)]
                med[target] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
                med[target] += (sum(r[3] for r in runs),)
            for target, _ in targets[app]:
                rps, p50, p99, errs = med[target]
                ratios = [""] * (len(theirs) + 1)
                if target.startswith("rs-"):
                    mode = target[3:]
                    ratios = [f"{rps / med[f'{name}-{mode}'][0]:.2f}x" for name in theirs]
                    ratios.append(f"{rps / med['static'][0]:.2f}x" if "static" in med else "")
                    summary.append((app, conc, mode, med))
                print(f"| {app} | {conc} | {target} | {rps:,.0f} | {p50:.2f} | {p99:.2f} "
                      f"| {errs} | " + " | ".join(ratios) + " |")
    print("\nsummary, req/s (static: Apache's static handler serving the same bytes)\n")
    print("| app | c | mode | static | rs | " + " | ".join(theirs) + " | "
          + " | ".join(f"rs / {name}" for name in theirs) + " | rs / static |")
    print("| --- " * (6 + 2 * len(theirs)) + "|")
    for app, conc, mode, med in summary:
        ours = med[f"rs-{mode}"][0]
        static = f"{med['static'][0]:,.0f}" if "static" in med else ""
        print(f"| {app} | {conc} | {mode} | {static} | {ours:,.0f} | "
              + " | ".join(f"{med[f'{name}-{mode}'][0]:,.0f}" for name in theirs) + " | "
              + " | ".join(f"{ours / med[f'{name}-{mode}'][0]:.2f}x" for name in theirs)
              + (f" | {ours / med['static'][0]:.2f}x |" if "static" in med else " | |"))
    print("\npeak RSS per process (VmHWM, MiB): Apache child / daemon process")
    for name, (_, port) in servers.items():
        child, daemon = peak_rss(f"{root}/{port}/httpd.pid")
        print(f"  {name:3} {child / 1024:7.1f} / {daemon / 1024:7.1f}")


if __name__ == "__main__":
    main()
