#!/usr/bin/env python3
"""Runs mod_wsgi's own integration suite against this module and against mod_wsgi's.

For every suite (``tests/wsgi/NAME.sh`` of a mod_wsgi checkout) and every module, the
checkout's own harness (``scripts/run-tests.sh NAME``) runs in a scratch copy: it calls
mod_wsgi-express 6.x ``setup-server`` to write the Apache configuration, starts Apache
and asserts on the responses. The harness finds ``mod_wsgi-express`` in the copy's
``.venv/bin``, where this script puts a stand-in that runs the real one and then points
the generated ``LoadModule wsgi_module`` line at the module under test. Each suite gets
its own Apache and a time limit; the table printed at the end is Markdown. Run by root,
the harness runs as an ordinary account (``--user``, www-data), as in mod_wsgi's CI.

Nothing of the checkout is kept in this repository: it is copied into a scratch
directory at run time. Not run by CI (it needs the checkout and mod_wsgi-express from
PyPI). ``scripts/upstream-suite.sh`` is the entry point; ``--help`` lists the options.
"""

import argparse
import datetime
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

# The harness's fixed listeners (scripts/run-tests.sh: PORT, HTTPS_PORT).
HARNESS_PORTS = (9876, 9877)
# curl's exit statuses that end the harness early (it runs under `set -e`).
CURL_EXITS = {
    7: "could not connect",
    18: "response body cut short",
    28: "timed out",
    52: "empty reply",
    56: "connection reset while receiving",
}
# What the harness prints for each assertion.
ASSERTION = re.compile(r"^  (PASS|FAIL): (.*)$")
# The shim reads its settings from these variables (set per suite by `run`).
ENV_REAL_EXPRESS = "UPSTREAM_SUITE_REAL_EXPRESS"
ENV_MODULE = "UPSTREAM_SUITE_MODULE"
ENV_ADAPT = "UPSTREAM_SUITE_ADAPT"
ENV_ERROR_LOG_COPY = "UPSTREAM_SUITE_ERROR_LOG"


@dataclass
class Module:
    label: str
    # None: the module mod_wsgi-express configures (its own build).
    path: str | None


@dataclass
class SuiteResult:
    suite: str
    # "passed", "failed", "no server", "timeout" or "incomplete".
    state: str = "incomplete"
    passed: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    # Why the suite did not run to the end (for "no server", "timeout", "incomplete").
    reason: str = ""
    seconds: float = 0.0
    # Processes still running from the suite's configuration once it ended (killed).
    leftovers: int = 0

    def note(self) -> str:
        if self.state in ("no server", "timeout", "incomplete"):
            return f"{self.state}: {self.reason}" if self.reason else self.state
        return self.failures[0] if self.failures else ""


# ---- Adapting the configuration (--adapt) ----------------------------------------------


def drop_directive(conf: str, directive: str, why: str, naming: str = "") -> str:
    """Comments out every use of `directive` whose line contains `naming` (with its
    continuation lines)."""
    out = []
    continuing = False
    for line in conf.splitlines(keepends=True):
        words = line.split()
        if continuing or (words and words[0] == directive and naming in line):
            out.append(f"# ({why}) {line}" if line.strip() else line)
            continuing = line.rstrip("\r\n").endswith("\\")
        else:
            out.append(line)
    return "".join(out)


def static_dispatch(include: str, port: str) -> str:
    """Replaces `WSGIDispatchScript` by the options it would return for each mount.

    The script is imported and asked, for every WSGIScriptAlias mount, which process
    group, application group and callable it picks for a request whose SCRIPT_NAME is
    that mount (with the SetEnv variables of the same file in the environ); the answers
    become the alias's options. This is exact for a script that decides from
    SCRIPT_NAME, the port and SetEnv values, as mod_wsgi's test dispatch script does.
    """
    dispatch_path = None
    environ = {"SERVER_PORT": port}
    for line in include.splitlines():
        words = [w.strip("'\"") for w in line.split()]
        if len(words) >= 2 and words[0] == "WSGIDispatchScript":
            dispatch_path = words[1]
        elif len(words) >= 3 and words[0] == "SetEnv":
            environ[words[1]] = words[2]
    if dispatch_path is None:
        return include
    spec = importlib.util.spec_from_file_location("upstream_dispatch", dispatch_path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load dispatch script {dispatch_path}")
    dispatch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dispatch)

    out = []
    for line in include.splitlines(keepends=True):
        words = line.split()
        if words and words[0] == "WSGIDispatchScript":
            out.append(f"# (--adapt: replaced by static alias options) {line}")
        elif len(words) >= 3 and words[0] == "WSGIScriptAlias":
            out.append(alias_with_dispatch(words, dict(environ, SCRIPT_NAME=words[1]), dispatch))
        else:
            out.append(line)
    return "".join(out)


def alias_with_dispatch(words: list[str], environ: dict, dispatch) -> str:
    """One WSGIScriptAlias line with the options the dispatch script picks."""
    chosen = {}
    if hasattr(dispatch, "process_group"):
        chosen["process-group"] = dispatch.process_group(environ)
    if hasattr(dispatch, "application_group"):
        # mod_wsgi: an empty application group is the main interpreter.
        chosen["application-group"] = dispatch.application_group(environ) or "%{GLOBAL}"
    if hasattr(dispatch, "callable_object"):
        chosen["callable-object"] = dispatch.callable_object(environ)
    kept = [w for w in words[3:] if w.split("=", 1)[0] not in chosen]
    options = kept + [f"{k}={v}" for k, v in chosen.items() if v is not None]
    return " ".join(words[:3] + options) + "\n"


# ---- The stand-in for mod_wsgi-express (runs inside the harness) -----------------------


def express_shim(argv: list[str]) -> int:
    """Runs the real mod_wsgi-express, then points its configuration at the module."""
    adapt = os.environ.get(ENV_ADAPT) == "1"
    if argv[:1] == ["setup-server"] and adapt:
        argv = adapt_include_file(argv)
    real = os.environ[ENV_REAL_EXPRESS]
    status = subprocess.call([real] + argv)
    if status != 0 or argv[:1] != ["setup-server"]:
        return status

    server_root = option_value(argv, "--server-root")
    if server_root is None:
        print("upstream-suite: setup-server without --server-root", file=sys.stderr)
        return 1
    conf_path = os.path.join(server_root, "httpd.conf")
    with open(conf_path, encoding="utf-8") as f:
        conf = f.read()
    module = os.environ.get(ENV_MODULE)
    if module:
        conf, count = re.subn(
            r"^LoadModule wsgi_module .*$",
            lambda _: f"LoadModule wsgi_module '{module}'",
            conf,
            flags=re.MULTILINE,
        )
        if count != 1:
            print(f"upstream-suite: {count} LoadModule wsgi_module lines in {conf_path}",
                  file=sys.stderr)
            return 1
    if adapt:
        # mod_wsgi-express's catch-all for URLs outside every mount (serving its document
        # root), and its preload: the suites' URLs are all WSGIScriptAlias mounts.
        why = "--adapt: express's catch-all handler"
        conf = drop_directive(conf, "WSGIHandlerScript", why)
        conf = drop_directive(conf, "WSGIImportScript", why, naming="/handler.wsgi'")
    with open(conf_path, "w", encoding="utf-8") as f:
        f.write(conf)

    # The harness deletes the server root when it stops; a second link to the error log
    # keeps it for the report (Apache appends to the file, it never replaces it).
    keep = os.environ.get(ENV_ERROR_LOG_COPY)
    if keep:
        error_log = os.path.join(server_root, "error_log")
        open(error_log, "a").close()
        try:
            os.link(error_log, keep)
        except OSError as e:
            print(f"upstream-suite: error log not kept: {e}", file=sys.stderr)
    return 0


def option_value(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def adapt_include_file(argv: list[str]) -> list[str]:
    """Passes an adapted copy of the harness's --include-file to setup-server."""
    include = option_value(argv, "--include-file")
    if include is None:
        return argv
    with open(include, encoding="utf-8") as f:
        text = f.read()
    adapted = include + ".adapted"
    with open(adapted, "w", encoding="utf-8") as f:
        f.write(static_dispatch(text, option_value(argv, "--port") or "8000"))
    return [adapted if a == include else a for a in argv]


# ---- Running the suites -----------------------------------------------------------------


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for_free_ports(seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while any(port_busy(p) for p in HARNESS_PORTS):
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def prepare_copy(checkout: str, base: str, owner: tuple[int, int] | None) -> str:
    """A scratch copy of the harness and tests, with the stand-in for mod_wsgi-express,
    owned by the account the harness runs as."""
    work = tempfile.mkdtemp(prefix="copy.", dir=base)
    os.chmod(work, 0o755)
    os.makedirs(os.path.join(work, "scripts"))
    shutil.copy2(os.path.join(checkout, "scripts", "run-tests.sh"),
                 os.path.join(work, "scripts"))
    shutil.copytree(os.path.join(checkout, "tests"), os.path.join(work, "tests"),
                    symlinks=True)
    for root, dirs, files in os.walk(work):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for name in files:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o644)
    bin_dir = os.path.join(work, ".venv", "bin")
    os.makedirs(bin_dir)
    helper = shutil.copy(os.path.abspath(__file__), bin_dir)
    shim = os.path.join(bin_dir, "mod_wsgi-express")
    with open(shim, "w", encoding="utf-8") as f:
        f.write("#!/bin/sh\n"
                f"exec {shlex.quote(sys.executable)} {shlex.quote(helper)} express-shim \"$@\"\n")
    os.chmod(shim, 0o755)
    if owner:
        for root, dirs, files in os.walk(work):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.lchown(name, *owner)
    return work


def stop_leftover_server(work: str) -> int:
    """Stops what the suite left running; returns how many processes had to be killed.

    The harness stops Apache itself, except when it was killed on timeout: then Apache
    (its pid file still in the server root) is asked to stop as `apachectl stop` would.
    Any process still running from the copy's configuration after that (a daemon process
    that outlived its Apache, children of a parent that did not stop) is killed: each
    is found by the copy's unique path in its command line.
    """
    pid_file = os.path.join(work, "httpd-tests", "httpd.pid")
    try:
        with open(pid_file, encoding="ascii") as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGTERM)
        wait_for_exit([pid], 30)
    except (OSError, ValueError):
        pass
    left = processes_of(work)
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        for p in left:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        if not wait_for_exit(left, grace):
            break
    return len(left)


def processes_of(work: str) -> list[int]:
    """Processes whose command line names a file in the copy (Apache and its children)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(a.startswith(work + "/") for a in args):
            found.append(int(entry))
    return found


def wait_for_exit(pids: list[int], seconds: float) -> list[int]:
    """Waits until the processes are gone; returns those still running."""
    deadline = time.monotonic() + seconds
    while True:
        running = [p for p in pids if os.path.exists(f"/proc/{p}")
                   and not is_zombie(p)]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.5)


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def parse_output(suite: str, text: str, error_log: str, status: int | None = None) -> SuiteResult:
    """What a harness run printed (and its exit status) as a result."""
    result = SuiteResult(suite)
    last = ""
    for line in text.splitlines():
        if line.startswith("Results: "):
            break  # the summary repeats the failures
        m = ASSERTION.match(line)
        if m and m.group(1) == "PASS":
            result.passed += 1
        elif m:
            result.failed += 1
            result.failures.append(m.group(2))
        if m:
            last = m.group(2)
    if re.search(r"^Results: \d+ passed, \d+ failed$", text, re.MULTILINE):
        result.state = "failed" if result.failed else "passed"
        return result
    # Apache: "AH00526: Syntax error on line N of FILE:" and the message on the next line.
    refused = re.search(r"Syntax error on line \d+ of [^\n]*\n([^,\n]*)", text)
    if refused:
        result.state, result.reason = "no server", "config refused: " + refused.group(1)
    elif "Server did not start" in text:
        result.state = "no server"
        result.reason = first_error(error_log) or "no httpd.pid after 15 s"
    elif status in CURL_EXITS:
        # The harness runs under `set -e`: a curl that fails ends the whole suite.
        result.reason = (f"curl exit {status} ({CURL_EXITS[status]}) ended the harness after "
                         f"'{last}'" if last else f"curl exit {status} ({CURL_EXITS[status]})")
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        result.reason = f"exit {status}: " if status else ""
        result.reason += lines[-1] if lines else "no output"
    return result


def first_error(error_log: str) -> str:
    try:
        with open(error_log, encoding="utf-8", errors="replace") as f:
            for line in f:
                if re.search(r"\[[a-z_]*:(emerg|alert|crit|error)\]", line):
                    return line.strip()
    except OSError:
        pass
    return ""


def run_suite(suite: str, module: Module, args, base: str, logs: str) -> SuiteResult:
    if not wait_for_free_ports(30):
        raise SystemExit(f"ports {HARNESS_PORTS} stay busy (another server?): stopping")
    # Run by root, the harness runs as an ordinary account, as in mod_wsgi's CI: Apache
    # refuses to serve as root, and the suites share marker files in /tmp between the
    # harness and the application, which must be the same user.
    account = pwd.getpwnam(args.user) if os.geteuid() == 0 else None
    owner = (account.pw_uid, account.pw_gid) if account else None
    work = prepare_copy(args.checkout, base, owner)
    out_path = os.path.join(logs, f"{suite}.out")
    error_log = os.path.join(logs, f"{suite}.error_log")
    kept_error_log = os.path.join(work, "error_log.kept")
    env = dict(os.environ, TMPDIR=work)
    if account:
        env.update(HOME=work, USER=account.pw_name, LOGNAME=account.pw_name)
    env[ENV_REAL_EXPRESS] = args.express
    env[ENV_MODULE] = module.path or ""
    env[ENV_ADAPT] = "1" if args.adapt else "0"
    env[ENV_ERROR_LOG_COPY] = kept_error_log
    started = time.monotonic()
    timed_out = False
    with open(out_path, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(["bash", "scripts/run-tests.sh", f"tests/wsgi/{suite}"],
                                cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                user=owner[0] if owner else None,
                                group=owner[1] if owner else None,
                                extra_groups=[] if owner else None)
        try:
            proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
    leftovers = stop_leftover_server(work)
    if os.path.exists(kept_error_log):
        shutil.move(kept_error_log, error_log)
    with open(out_path, encoding="utf-8", errors="replace") as f:
        result = parse_output(suite, f.read(), error_log, proc.returncode)
    result.seconds = time.monotonic() - started
    result.leftovers = leftovers
    if timed_out:
        result.state = "timeout"
        result.reason = f"killed after {args.timeout} s"
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def discover_suites(checkout: str) -> list[str]:
    wsgi = os.path.join(checkout, "tests", "wsgi")
    return sorted(n[:-3] for n in os.listdir(wsgi)
                  if n.endswith(".sh") and os.path.exists(os.path.join(wsgi, n[:-3] + ".py")))


# ---- The report ------------------------------------------------------------------------


def render_table(suites: list[str], modules: list[Module],
                 results: dict[str, dict[str, SuiteResult]]) -> str:
    noted = [m for m in modules
             if any(results[m.label][s].state != "passed" for s in suites)]
    head = ["suite"]
    for m in modules:
        head += [f"{m.label} passed", "failed"]
    head += [f"first failure ({m.label})" for m in noted]
    rows = [head, ["---"] * len(head)]
    totals = {m.label: [0, 0] for m in modules}
    for s in suites:
        row = [s]
        for m in modules:
            r = results[m.label][s]
            totals[m.label][0] += r.passed
            totals[m.label][1] += r.failed
            ran_out = r.state in ("no server", "timeout", "incomplete")
            row += [str(r.passed), f"{r.failed}{' +' if ran_out else ''}"]
        row += [results[m.label][s].note().replace("|", "\\|") for m in noted]
        rows.append(row)
    total = ["**total**"]
    for m in modules:
        total += [f"**{totals[m.label][0]}**", f"**{totals[m.label][1]}**"]
    rows.append(total + [""] * len(noted))
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def main_run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/upstream-suite.sh",
        description="Run mod_wsgi's integration suite against mod_wsgi_rs and mod_wsgi.")
    parser.add_argument("checkout", help="a mod_wsgi source checkout (6.x)")
    parser.add_argument("suites", nargs="*", help="suite names (default: every tests/wsgi/*.sh)")
    parser.add_argument("--module", default="target/release/libmod_wsgi_rs.so",
                        help="this module's build (default: %(default)s)")
    parser.add_argument("--express", default="/opt/mod_wsgi6-venv/bin/mod_wsgi-express",
                        help="mod_wsgi-express 6.x (default: %(default)s)")
    parser.add_argument("--only", choices=("rs", "mod_wsgi"),
                        help="run one module only (default: both)")
    parser.add_argument("--adapt", action="store_true",
                        help="leave out what this module lacks that every suite's "
                             "configuration has: WSGIDispatchScript becomes the static "
                             "alias options it returns; express's catch-all handler "
                             "(WSGIHandlerScript and the WSGIImportScript preloading it), "
                             "which no suite's URL reaches, is dropped")
    parser.add_argument("--timeout", type=int, default=240,
                        help="seconds a suite may take before it is killed (default: %(default)s)")
    parser.add_argument("--user", default="www-data",
                        help="account the harness (and so Apache) runs as when this runs "
                             "as root (default: %(default)s)")
    parser.add_argument("--logs", help="directory for each suite's output and error log "
                                       "(default: a new one in $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    args = parser.parse_intermixed_args(argv)

    args.checkout = os.path.abspath(args.checkout)
    args.module = os.path.abspath(args.module)
    if not os.path.isfile(os.path.join(args.checkout, "scripts", "run-tests.sh")):
        parser.error(f"{args.checkout} has no scripts/run-tests.sh")
    if not os.access(args.express, os.X_OK):
        parser.error(f"no mod_wsgi-express at {args.express} (pip install mod-wsgi==6.1.1)")
    modules = []
    if args.only in (None, "rs"):
        if not os.path.isfile(args.module):
            parser.error(f"no module at {args.module} (cargo build --release)")
        modules.append(Module("mod_wsgi_rs", args.module))
    if args.only in (None, "mod_wsgi"):
        version = express_version(args.express)
        modules.append(Module(f"mod_wsgi {version or '(express)'}", None))
    known = discover_suites(args.checkout)
    suites = [s.removesuffix(".sh").rsplit("/", 1)[-1] for s in args.suites] or known
    unknown = [s for s in suites if s not in known]
    if unknown:
        parser.error(f"no such suite: {', '.join(unknown)} (known: {', '.join(known)})")

    base = tempfile.mkdtemp(prefix="upstream-suite.")
    os.chmod(base, 0o755)
    logs = os.path.abspath(args.logs or os.path.join(base, "logs"))
    results: dict[str, dict[str, SuiteResult]] = {}
    for m in modules:
        results[m.label] = {}
        module_logs = os.path.join(logs, re.sub(r"[^A-Za-z0-9_.-]+", "-", m.label))
        os.makedirs(module_logs, exist_ok=True)
        for s in suites:
            r = run_suite(s, m, args, base, module_logs)
            results[m.label][s] = r
            print(f"{m.label:>16} {s:<18} {r.state:<10} {r.passed:>3} passed "
                  f"{r.failed:>3} failed  {r.seconds:5.1f} s  {r.note()}"
                  + (f" [{r.leftovers} process(es) outlived the suite, killed]"
                     if r.leftovers else ""), flush=True)
        with open(os.path.join(module_logs, "failures.txt"), "w", encoding="utf-8") as f:
            for s in suites:
                r = results[m.label][s]
                for line in r.failures + ([r.note()] if r.state not in ("passed", "failed") else []):
                    f.write(f"{s}: {line}\n")
    if not args.keep:
        for entry in os.listdir(base):
            if entry != "logs" or args.logs:
                shutil.rmtree(os.path.join(base, entry), ignore_errors=True)
        if not os.listdir(base):
            os.rmdir(base)

    print()
    print(f"mod_wsgi suite from {args.checkout}, {datetime.date.today().isoformat()}"
          f"{', --adapt' if args.adapt else ''}; '+' after a count: the suite did not run "
          "to the end")
    print()
    print(render_table(suites, modules, results))
    print()
    print(f"Outputs, error logs and every failure: {logs}")
    return 0 if all(r.state == "passed" for per in results.values() for r in per.values()) else 1


def express_version(express: str) -> str:
    python = os.path.join(os.path.dirname(express), "python")
    out = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('mod-wsgi'))"],
        capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


if __name__ == "__main__":
    if sys.argv[1:2] == ["express-shim"]:
        sys.exit(express_shim(sys.argv[2:]))
    sys.exit(main_run(sys.argv[1:]))
