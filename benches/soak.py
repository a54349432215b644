"""Soak test: one Apache (event MPM) with mod_wsgi_rs under mixed load, restarted
gracefully every minute, for a bounded time.

The app is served embedded (/e/...) and by a daemon group (/d/..., processes=2
threads=8). Client threads (stdlib http.client, keep-alive) send, at random: small GETs,
POST bodies of 0 B to 1 MiB echoed back as length and CRC-32, a streamed response (a
generator of 64 x 1 KiB chunks, no Content-Length) and a request whose app raises (500
expected). Every answer is checked (status and body). A request that finds its kept-alive
connection closed by a graceful restart before any byte of the answer (the race every
HTTP client retries) is retried once on a new connection and counted as a retry; any
other failure is an error.

Every `--restart-every` seconds the RSS (VmRSS) of the Apache parent, its children and
its daemon processes is sampled, then SIGUSR1 (graceful restart) goes to the parent; a
last sample is taken at the end. Reported: requests by kind and mode, errors, retries,
the RSS table with first/last/max, restarts Apache logged, and error-log lines other than
the app's expected traceback.

Run through benches/soak.sh (it builds the module). Every loop checks the deadline; the
client threads are joined with a timeout and Apache is stopped in any case.
"""

import argparse
import collections
import http.client
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

APP = '''
import zlib

CHUNK = b"s" * 1024

def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/small":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
        return [b"Hello, World!"]
    if path == "/echo":
        stream = environ["wsgi.input"]
        total, crc = 0, 0
        while True:
            block = stream.read(65536)
            if not block:
                break
            total += len(block)
            crc = zlib.crc32(block, crc)
        body = f"{total}:{crc}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (CHUNK for _ in range(64))
    if path == "/error":
        raise RuntimeError("soak-expected application error")
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such path"]
'''

# kind -> weight (errors are rare: each writes a traceback of a few lines to the error
# log); POST sizes -> weight.
KINDS = {"small": 50, "echo": 30, "stream": 19, "error": 1}
POST_SIZES = {0: 2, 100: 4, 8 * 1024: 4, 64 * 1024: 3, 1024 * 1024: 1}
RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def conf(root, modules, module, port):
    return "\n".join([
        f"ServerRoot {root}",
        f"Listen 127.0.0.1:{port}",
        "ServerName 127.0.0.1",
        f"PidFile {root}/httpd.pid",
        f"ErrorLog {root}/error.log",
        "LogLevel warn",
        f"DefaultRuntimeDir {root}",
        f"Mutex file:{root} default",
        f"LoadModule mpm_event_module {modules}/mod_mpm_event.so",
        "StartServers 2",
        "ServerLimit 4",
        "MinSpareThreads 25",
        "MaxSpareThreads 75",
        "ThreadsPerChild 25",
        "MaxRequestWorkers 100",
        f"LoadModule authz_core_module {modules}/mod_authz_core.so",
        f"LoadModule wsgi_module {module}",
        "User www-data",
        "Group www-data",
        "<Directory />",
        "  AllowOverride None",
        "  Require all denied",
        "</Directory>",
        f"<Directory {root}/app>",
        "  Require all granted",
        "</Directory>",
        "WSGIDaemonProcess soak processes=2 threads=8 display-name=(wsgi:soak)",
        f"WSGIScriptAlias /e {root}/app/app.wsgi application-group=%{{GLOBAL}}",
        f"WSGIScriptAlias /d {root}/app/app.wsgi process-group=soak"
        " application-group=%{GLOBAL}",
    ]) + "\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client(threading.Thread):
    """One load thread: a kept-alive connection per mode, requests until `stop`."""

    def __init__(self, port, seed, stop):
        super().__init__(daemon=True)
        self.port, self.rng, self.stop = port, random.Random(seed), stop
        self.conns = {}
        self.counts = collections.Counter()   # (mode, kind) -> requests answered as expected
        self.errors = collections.Counter()   # (mode, kind, what) -> count
        self.retries = 0
        block = self.rng.randbytes(4096)
        self.payloads = {n: (block * (n // 4096 + 1))[:n] for n in POST_SIZES}

    def conn(self, mode, fresh=False):
        c = self.conns.get(mode)
        if fresh or c is None:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            c.used = False
            self.conns[mode] = c
        return c

    def once(self, mode, kind, body, fresh):
        """(status, body); None when a kept-alive connection was found closed before any
        byte of the answer (the caller retries on a new one)."""
        c = self.conn(mode, fresh)
        reused = c.used
        try:
            headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
            c.request("POST" if body is not None else "GET", f"/{mode}/{kind}", body=body,
                      headers=headers)
            resp = c.getresponse()
        except RETRYABLE:
            c.close()
            self.conns.pop(mode, None)
            if reused and not fresh:
                return None
            raise
        data = resp.read()
        c.used = True
        if resp.will_close:
            c.close()
            self.conns.pop(mode, None)
        return resp.status, data

    def check(self, kind, body, status, data):
        if kind == "error":
            return status == 500
        if status != 200:
            return False
        if kind == "small":
            return data == b"Hello, World!"
        if kind == "echo":
            return data == f"{len(body)}:{zlib.crc32(body)}".encode()
        return data == b"s" * (64 * 1024)

    def run(self):
        kinds, weights = list(KINDS), list(KINDS.values())
        sizes, size_weights = list(POST_SIZES), list(POST_SIZES.values())
        while not self.stop.is_set():
            mode = self.rng.choice(("e", "d"))
            kind = self.rng.choices(kinds, weights)[0]
            body = None
            if kind == "echo":
                body = self.payloads[self.rng.choices(sizes, size_weights)[0]]
            try:
                got = self.once(mode, kind, body, fresh=False)
                if got is None:
                    self.retries += 1
                    got = self.once(mode, kind, body, fresh=True)
            except (OSError, http.client.HTTPException) as e:
                self.errors[(mode, kind, type(e).__name__)] += 1
                self.conns.pop(mode, None)
                continue
            status, data = got
            if self.check(kind, body, status, data):
                self.counts[(mode, kind)] += 1
            else:
                self.errors[(mode, kind, f"status {status}, {len(data)} bytes")] += 1
        for c in self.conns.values():
            c.close()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read())[1])
    except (OSError, TypeError):
        return 0


def sample(parent, t):
    """RSS (KiB) of the parent, and count/total/max of its children and daemons."""
    children, daemons = [], []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                daemon = f.read().startswith(b"(wsgi:")
        except (OSError, IndexError, ValueError):
            continue
        rss = rss_kib(pid)
        if rss:
            (daemons if daemon else children).append(rss)
    return {"t": t, "parent": rss_kib(parent), "children": children, "daemons": daemons}


def mib(kib):
    return f"{kib / 1024:.1f}"


def report(args, clients, samples, root, restarts_sent, elapsed):
    counts, errors = collections.Counter(), collections.Counter()
    for c in clients:
        counts.update(c.counts)
        errors.update(c.errors)
    retries = sum(c.retries for c in clients)
    total = sum(counts.values()) + sum(errors.values())
    print(f"\nsoak: {elapsed:.0f} s, {args.clients} client threads, graceful restart every "
          f"{args.restart_every} s ({restarts_sent} sent)")
    print(f"requests: {total} ({total / elapsed:.0f}/s), as expected: {sum(counts.values())}, "
          f"errors: {sum(errors.values())}, kept-alive connections closed by a restart and "
          f"retried: {retries}")
    print("\n| mode | kind | as expected |")
    print("| --- | --- | --- |")
    for (mode, kind), n in sorted(counts.items()):
        print(f"| {'embedded' if mode == 'e' else 'daemon'} | {kind} | {n} |")
    for (mode, kind, what), n in sorted(errors.items()):
        print(f"error: {mode} {kind}: {what} x{n}")

    print("\nRSS (MiB) sampled before each restart and at the end; children and daemons: "
          "count, total, largest")
    print("\n| t (s) | parent | children | children total | child max "
          "| daemons | daemons total | daemon max |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for s in samples:
        c, d = s["children"], s["daemons"]
        print(f"| {s['t']:.0f} | {mib(s['parent'])} | {len(c)} | {mib(sum(c))} "
              f"| {mib(max(c, default=0))} | {len(d)} | {mib(sum(d))} "
              f"| {mib(max(d, default=0))} |")
    series = {
        "parent": [s["parent"] for s in samples],
        "child max": [max(s["children"], default=0) for s in samples],
        "daemon max": [max(s["daemons"], default=0) for s in samples],
        "daemons total": [sum(s["daemons"]) for s in samples],
    }
    print("\n| RSS (MiB) | first | last | max |")
    print("| --- | --- | --- | --- |")
    for name, values in series.items():
        print(f"| {name} | {mib(values[0])} | {mib(values[-1])} | {mib(max(values))} |")

    with open(f"{root}/error.log", errors="replace") as f:
        log = f.readlines()
    graceful = sum("Doing graceful restart" in line for line in log)
    app = [l for l in log if "[wsgi:error]" in l]
    other = [l for l in log if "[wsgi:error]" not in l and ":notice]" not in l]
    print(f"\nerror log: {graceful} graceful restarts logged, {len(app)} app error lines "
          f"([wsgi:error], the /error app's traceback), {len(other)} other lines at warn "
          "or above")
    for line in collections.Counter(re.sub(r"^\[[^]]*\] ", "", l).strip()
                                    for l in other).most_common(10):
        print(f"  {line[1]} x {line[0][:200]}")
    return sum(errors.values()) == 0 and not other


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--restart-every", type=int, default=60)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--module", required=True)
    ap.add_argument("--modules", required=True)
    args = ap.parse_args()
    # `timeout` in soak.sh ends a run that overstays with SIGTERM: stop Apache on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("soak: terminated"))

    root = tempfile.mkdtemp(prefix="mod_wsgi_rs-soak.")
    os.chmod(root, 0o755)
    os.mkdir(f"{root}/app", 0o755)
    with open(f"{root}/app/app.wsgi", "w") as f:
        f.write(APP)
    os.chmod(f"{root}/app/app.wsgi", 0o644)
    port = free_port()
    with open(f"{root}/httpd.conf", "w") as f:
        f.write(conf(root, args.modules, args.module, port))

    apache = subprocess.Popen(["apache2", "-f", f"{root}/httpd.conf", "-DFOREGROUND"],
                              start_new_session=True)
    stop = threading.Event()
    clients, samples, restarts, ok = [], [], 0, False
    try:
        warm_up(port, apache)
        clients = [Client(port, seed, stop) for seed in range(args.clients)]
        start = time.monotonic()
        deadline = start + args.seconds
        for c in clients:
            c.start()
        next_tick = start + args.restart_every
        while time.monotonic() < deadline:
            time.sleep(max(0.0, min(next_tick, deadline) - time.monotonic()))
            if apache.poll() is not None:
                sys.exit(f"soak: Apache exited with status {apache.returncode}")
            if time.monotonic() >= deadline:
                break
            samples.append(sample(apache.pid, time.monotonic() - start))
            os.kill(apache.pid, signal.SIGUSR1)
            restarts += 1
            print(f"soak: {time.monotonic() - start:.0f} s, graceful restart {restarts}",
                  flush=True)
            next_tick += args.restart_every
        samples.append(sample(apache.pid, time.monotonic() - start))
        stop.set()
        for c in clients:
            c.join(timeout=120)
        stuck = [c for c in clients if c.is_alive()]
        if stuck:
            print(f"soak: {len(stuck)} client threads still waiting after 120 s",
                  file=sys.stderr)
        ok = report(args, clients, samples, root, restarts, time.monotonic() - start)
        ok = ok and not stuck
    finally:
        stop.set()
        try:
            os.killpg(apache.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            apache.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(apache.pid, signal.SIGKILL)
            apache.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if ok else 1)


def warm_up(port, apache):
    """Waits (at most 30 s) until both modes answer, so start-up is not counted."""
    deadline = time.monotonic() + 30
    for mode in ("e", "d"):
        while True:
            if apache.poll() is not None:
                sys.exit(f"soak: Apache exited at startup with status {apache.returncode}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", f"/{mode}/small")
                if c.getresponse().status == 200:
                    c.close()
                    break
                c.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"soak: /{mode}/small did not answer 200 within 30 s")
            time.sleep(0.2)


if __name__ == "__main__":
    main()
