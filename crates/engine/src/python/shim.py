# Per-interpreter support objects of mod_wsgi_rs.
#
# Executed into the namespace of a fresh `mod_wsgi` module in every interpreter, after the
# native function `_log(level, text)` has been placed there. Everything here is plain Python
# so that no type object is shared between interpreters.

import sys
from codecs import getincrementaldecoder as _get_decoder

_utf8_decoder = _get_decoder("utf-8")


class _WriteOnly:
    """What the log streams share: write-only, never a terminal, never seekable."""

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def seekable(self):
        return False

    def fileno(self):
        import io
        raise io.UnsupportedOperation("the Apache error log stream has no file descriptor")


class LogStream(_WriteOnly):
    """A text stream that sends each complete line to the Apache error log."""

    encoding = "utf-8"
    errors = "backslashreplace"
    closed = False

    def __init__(self, emit, name):
        self._emit = emit
        self._pending = ""
        self.name = name

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        data = self._pending + text
        *lines, self._pending = data.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self):
        if self._pending:
            pending, self._pending = self._pending, ""
            self._emit(pending)

    def close(self):
        self.flush()

    @property
    def buffer(self):
        binary = self.__dict__.get("_buffer")
        if binary is None:
            binary = self._buffer = LogBuffer(self)
        return binary


class LogBuffer(_WriteOnly):
    """The binary side of a LogStream (its `.buffer`): bytes-like objects are decoded as
    UTF-8, a character split across writes kept until its last byte arrives."""

    closed = False

    def __init__(self, text):
        self._text = text
        self._decode = _utf8_decoder("backslashreplace").decode

    def write(self, data):
        data = memoryview(data).cast("B")
        self._text.write(self._decode(data))
        return len(data)

    def flush(self):
        self._text.write(self._decode(b"", True))
        self._text.flush()

    def close(self):
        self.flush()

    @property
    def name(self):
        return self._text.name


class Restricted:
    """Stands in for sys.stdin/sys.stdout when WSGIRestrictStdin/Stdout is On: touching
    any attribute raises OSError naming the stream."""

    __slots__ = ("_stream",)

    def __init__(self, stream):
        object.__setattr__(self, "_stream", stream)

    def __getattribute__(self, name):
        stream = object.__getattribute__(self, "_stream")
        raise OSError("%s access restricted by mod_wsgi" % stream)


class Input:
    """wsgi.input: reads the request body as Apache streams it, never all at once."""

    __slots__ = ("_op",)

    def __init__(self, op):
        self._op = op

    def read(self, size=-1):
        return self._op(0, -1 if size is None else int(size))

    def readline(self, size=-1):
        return self._op(1, -1 if size is None else int(size))

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self._op(1, -1)
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self._op(1, -1)
        if not line:
            raise StopIteration
        return line

    def close(self):
        pass


class RequestTimeout(BaseException):
    """Raised inside a request that exceeded the daemon group's request-timeout."""


class FileWrapper:
    """wsgi.file_wrapper: served with Apache's file buckets when the file is a real file."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


def _restrict_signal():
    import signal

    def ignored_signal(signum, handler):
        import traceback  # only when an app tries it: it costs memory in every interpreter

        stack = "".join(traceback.format_stack(limit=5)[:-1]).rstrip()
        _log(1, "mod_wsgi_rs: callback registration for signal %d ignored "
                "(WSGIRestrictSignal On).\n%s" % (signum, stack))
        return signal.getsignal(signum)

    signal.signal = ignored_signal


def _add_path_layer(directories):
    """site.addsitedir each directory, then put the layer (its directories in order, then
    what their .pth files added) in front of sys.path, also the ones already on it."""
    import os
    import site
    before = list(sys.path)
    for directory in directories:
        site.addsitedir(directory)
    head = []
    for directory in directories:
        for form in (directory, os.path.abspath(directory)):
            if form in sys.path and form not in head:
                head.append(form)
                break
    head += [p for p in sys.path if p not in before and p not in head]
    sys.path[:] = head + [p for p in sys.path if p not in head]


def _text_log_stream(name):
    """sys.stderr/sys.stdout as mod_wsgi 6 makes them: an io.TextIOWrapper (made once per
    interpreter) over the binary side of a LogStream, passing each write straight on."""
    import io
    return io.TextIOWrapper(LogStream(lambda line: _log(0, line), name).buffer,
                            encoding="utf-8", errors="backslashreplace",
                            line_buffering=True, write_through=True)


_errors_streams = {}


def _errors_stream():
    """wsgi.errors as mod_wsgi 6 gives it: an io.TextIOWrapper, whose lines go to the error
    log with the context of the request running on this thread. One per thread, kept:
    making a TextIOWrapper for every request costs more than the rest of the environ."""
    ident = _threading.get_ident()
    stream = _errors_streams.get(ident)
    if stream is not None:
        try:
            if stream.closed or not stream.line_buffering:
                stream = None  # an application closed or reconfigured it
        except ValueError:
            stream = None  # an application detached its buffer
    if stream is None:
        import io
        stream = _errors_streams[ident] = io.TextIOWrapper(
            LogStream(_wsgi_errors_line, "wsgi.errors").buffer, encoding="utf-8",
            errors="backslashreplace", line_buffering=True, write_through=True)
    return stream


def _install_streams(restrict_stdin, restrict_stdout):
    sys.stderr = _text_log_stream("<stderr>")
    if restrict_stdout:
        sys.stdout = Restricted("sys.stdout")
    else:
        sys.stdout = _text_log_stream("<stdout>")
    if restrict_stdin:
        sys.stdin = Restricted("sys.stdin")


class SharedStoreError(Exception):
    """A shared store operation could not be carried out."""


class SharedStoreFull(SharedStoreError, MemoryError):
    """The store has no room for the value (nothing was changed)."""


class SharedStoreUnavailable(SharedStoreError, OSError):
    """The store cannot be reached (its Redis server is down, or its memory is damaged)."""


class SharedStore:
    """One WSGISharedStore: keys (str or bytes) to values (bytes, str or int) that every
    process and interpreter of the server sees. Each method is atomic."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "<mod_wsgi.SharedStore %r>" % self.name

    def get(self, key, default=None):
        found, value = _store(0, self.name, key)
        return value if found else default

    def set(self, key, value, ttl=None):
        """Stores value; with ttl (seconds) it disappears after that long."""
        _store(1, self.name, key, value, None, ttl)

    def delete(self, key):
        """Removes key; True if it was there."""
        return _store(2, self.name, key)

    def incr(self, key, delta=1):
        """Adds delta to the integer under key (missing counts as 0); returns the result."""
        return _store(3, self.name, key, delta)

    def decr(self, key, delta=1):
        return _store(3, self.name, key, -delta)

    def cas(self, key, expected, new, ttl=None):
        """Sets key to new only if it holds expected (None: only if absent)."""
        return _store(4, self.name, key, expected, new, ttl)

    def keys(self, prefix=""):
        return _store(5, self.name, prefix)

    def clear(self):
        _store(6, self.name, b"")

    def stats(self):
        return _store(7, self.name, b"")

    def __getitem__(self, key):
        found, value = _store(0, self.name, key)
        if not found:
            raise KeyError(key)
        return value

    def __setitem__(self, key, value):
        _store(1, self.name, key, value)

    def __delitem__(self, key):
        if not _store(2, self.name, key):
            raise KeyError(key)

    def __contains__(self, key):
        return _store(0, self.name, key)[0]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())


def shared(name):
    """The WSGISharedStore called name."""
    names = _store_names()
    if name not in names:
        denied = _store_denied(name)
        if denied:
            raise PermissionError(denied)
        raise KeyError(
            "no WSGISharedStore named %r (configured: %s)" % (name, ", ".join(names) or "none")
        )
    return SharedStore(name)


import threading as _threading

_subscriptions = {}
_delivery_lock = _threading.RLock()


def broadcast(topic, message=None):
    """Tells every process of the server that topic changed. Each interpreter that
    subscribed to it runs its callbacks once, before its next request, with the latest
    message (bytes, str, int or None). Returns the topic's new generation number."""
    return _broadcast(topic, message)


def subscribe(topic, callback):
    """Calls callback(topic, message) in this interpreter after each later broadcast on
    topic (several broadcasts between two requests give one call, with the latest
    message). If topic was broadcast before, callback runs at once with the latest
    message, so a process started after a change (a recycled daemon, a new Apache child)
    catches up. A callback that raises is logged (WSGI1134) and stays subscribed, on
    catching up as on later deliveries: one bad message must not keep every new process
    from loading the application."""
    with _delivery_lock:
        generation, message = _topic(topic)
        entry = _subscriptions.get(topic)
        if entry is None:
            entry = _subscriptions[topic] = [generation, []]
        entry[1].append(callback)
    if generation:
        _call_subscriber(callback, topic, message)


def _call_subscriber(callback, topic, message):
    import traceback

    try:
        callback(topic, message)
    except Exception:
        _log(0, "WSGI1134: broadcast subscriber %r of topic %r raised:\n%s"
             % (callback, topic, traceback.format_exc().rstrip()))


def _deliver():
    with _delivery_lock:
        for topic, entry in list(_subscriptions.items()):
            generation, message = _topic(topic)
            if generation == entry[0]:
                continue
            entry[0] = generation
            for callback in list(entry[1]):
                _call_subscriber(callback, topic, message)


# Checked by hand rather than with `re`: importing re costs every sub-interpreter
# about 0.5 MiB, and these two checks are all the shim would use it for.
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_METRIC_CHARS = _LABEL_CHARS | {":"}


def _valid_name(name, chars):
    """Prometheus name syntax: only `chars`, and not starting with a digit."""
    return (isinstance(name, str) and name != "" and not "0" <= name[0] <= "9"
            and all(c in chars for c in name))


def _labels_text(labels, extra=()):
    items = sorted(labels.items()) + list(extra)
    if not items:
        return ""
    parts = []
    for name, value in items:
        if not _valid_name(name, _LABEL_CHARS) or name.startswith("__"):
            raise ValueError("invalid label name %r" % name)
        value = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        parts.append('%s="%s"' % (name, value))
    return "{" + ",".join(parts) + "}"


def _number(value):
    value = float(value)
    if value != value:
        raise ValueError("a metric value cannot be NaN")
    return value


class _Metric:
    kind = None

    def __init__(self, name, documentation=""):
        if not _valid_name(name, _METRIC_CHARS):
            raise ValueError("invalid metric name %r" % (name,))
        self.name = name
        _metric_declare(name, self.kind, str(documentation))

    def __repr__(self):
        return "<mod_wsgi.metrics %s %r>" % (self.kind, self.name)


class Counter(_Metric):
    """A count that only goes up, summed over every process of the server."""

    kind = "counter"

    def inc(self, amount=1, **labels):
        amount = _number(amount)
        if amount < 0:
            raise ValueError("a counter only goes up")
        _metric_update(self.name, [(self.name + _labels_text(labels), amount, False)])


class Gauge(_Metric):
    """A value that goes up and down, one for the whole server (the last set() wins)."""

    kind = "gauge"

    def set(self, value, **labels):
        _metric_update(self.name, [(self.name + _labels_text(labels), _number(value), True)])

    def inc(self, amount=1, **labels):
        _metric_update(self.name, [(self.name + _labels_text(labels), _number(amount), False)])

    def dec(self, amount=1, **labels):
        _metric_update(self.name, [(self.name + _labels_text(labels), -_number(amount), False)])


class Histogram(_Metric):
    """Observations counted in buckets, summed over every process of the server."""

    kind = "histogram"
    DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self, name, documentation="", buckets=DEFAULT_BUCKETS):
        super().__init__(name, documentation)
        self.buckets = sorted(_number(b) for b in buckets)

    def observe(self, value, **labels):
        value = _number(value)
        name = self.name
        updates = [
            (name + "_bucket" + _labels_text(labels, [("le", repr(le))]),
             1.0 if value <= le else 0.0, False)
            for le in self.buckets
        ]
        updates.append((name + "_bucket" + _labels_text(labels, [("le", "+Inf")]), 1.0, False))
        updates.append((name + "_sum" + _labels_text(labels), value, False))
        updates.append((name + "_count" + _labels_text(labels), 1.0, False))
        _metric_update(name, updates)


class _MetricsNamespace:
    """mod_wsgi.metrics: application metrics served by `SetHandler wsgi-metrics`."""

    Counter = Counter
    Gauge = Gauge
    Histogram = Histogram
    counter = Counter
    gauge = Gauge
    histogram = Histogram


metrics = _MetricsNamespace()


def process_metrics():
    """This process since it started: requests, busy time, CPU, memory and its request
    threads (mod_wsgi 6's keys); None with WSGITelemetryService, whose reporter is then
    the consumer of the metrics, as in mod_wsgi 6."""
    return _process_metrics()


def request_metrics():
    """This process's requests since the previous call: phase means, extremes and
    histograms, I/O counts, status classes and per-thread lists (mod_wsgi 6's keys);
    None with WSGITelemetryService, as in mod_wsgi 6."""
    return _request_metrics()


def server_metrics():
    """The Apache child processes and their workers, or None unless WSGIServerMetrics
    (server-metrics= for a daemon group) is On."""
    return _server_metrics()


def start_recording_metrics():
    """As in mod_wsgi 6, though the metrics are always recorded here: from now on each
    request also reads its thread's CPU time (request_threads_cpu_time), which the
    first request_metrics() call turns on as well."""
    _start_recording_metrics()


def _make_log_handler():
    import logging

    class LogHandler(logging.Handler):
        """A logging.Handler that writes each record to Apache's error log at the level
        matching the record's: CRITICAL crit, ERROR error, WARNING warn, INFO info, DEBUG
        (and anything lower) debug. Against the request the calling thread runs (its
        client in the line), or the server's log outside requests. Records Apache's
        LogLevel for this module drops are not formatted; each line of the formatted
        text is a log line of its own."""

        def emit(self, record):
            if not _log_enabled(record.levelno):
                return
            try:
                text = self.format(record)
            except Exception:
                self.handleError(record)
                return
            for line in text.split("\n"):
                _log_record(record.levelno, line)

    LogHandler.__module__ = "mod_wsgi"
    return LogHandler


def __getattr__(name):
    # LogHandler is built on first use: importing logging in every interpreter up front
    # would cost each one its import time and memory.
    if name == "LogHandler":
        handler = globals()["LogHandler"] = _make_log_handler()
        return handler
    raise AttributeError("module 'mod_wsgi' has no attribute %r" % name)


_gc_events = None
_gc_dropped = 0


def _telemetry_gc_install():
    """With WSGITelemetryService: records each collection (start, pause, generation,
    collected, uncollectable) for the reporter, at most 256 between two samples."""
    global _gc_events
    import collections
    import gc
    import time

    _gc_events = events = collections.deque(maxlen=256)
    started = [0.0]

    def _telemetry_gc_callback(phase, info, _now=time.time):
        global _gc_dropped
        if phase == "start":
            started[0] = _now()
        elif phase == "stop" and isinstance(info, dict):
            now = _now()
            if len(events) == events.maxlen:
                _gc_dropped += 1
            events.append((started[0], max(now - started[0], 0.0), int(info.get("generation", 0)),
                           int(info.get("collected", 0)), int(info.get("uncollectable", 0))))

    gc.callbacks.append(_telemetry_gc_callback)


def _telemetry_gc_read():
    """The collector's counters and the pauses since the previous call (at most 64)."""
    global _gc_dropped
    if _gc_events is None:
        return None
    import gc

    def three(values):
        values = [max(int(v), 0) for v in values][:3]
        return values + [0] * (3 - len(values))

    stats = gc.get_stats()
    per_generation = [three(s.get(key, 0) for s in stats)
                      for key in ("collections", "collected", "uncollectable")]
    counters = three(gc.get_count()) + three(gc.get_threshold())
    for values in per_generation:
        counters += values
    counters += [int(gc.isenabled()), gc.get_freeze_count(), _gc_dropped]
    _gc_dropped = 0
    events = []
    while _gc_events and len(events) < 64:
        events.append(_gc_events.popleft())
    return counters, events


event_callbacks = []
shutdown_callbacks = []
signal_callbacks = []
active_requests = {}
_stopping_hooked = False


def _log_callback_failure(what):
    import traceback

    _log(0, "WSGI0112: %s raised:\n%s" % (what, traceback.format_exc().rstrip()))


def _call_callbacks(callbacks, name, event):
    for callback in list(callbacks):
        try:
            result = callback(name, **event)
        except Exception:
            _log_callback_failure("event callback %r for %r" % (callback, name))
            continue
        if isinstance(result, dict):
            # As mod_wsgi 6: a callback's dict is merged into the event the next
            # callback (and, for request_started, the request) sees.
            event.update(result)


def _publish(name, event):
    _call_callbacks(event_callbacks, name, event)


def _process_stopping():
    event = {"shutdown_reason": _shutdown_reason()}
    _call_callbacks(event_callbacks, "process_stopping", event)
    _call_callbacks(shutdown_callbacks, "process_stopping", event)


def _process_signal(signum, signame):
    event = {"signum": signum, "signame": signame}
    _call_callbacks(event_callbacks, "process_signal", event)
    _call_callbacks(signal_callbacks, "process_signal", event)


def _hook_stopping():
    global _stopping_hooked
    if not _stopping_hooked:
        import atexit

        atexit.register(_process_stopping)
        _stopping_hooked = True


def subscribe_events(callback):
    """Calls callback(name, **event) for request_started, response_started,
    request_exception, request_finished, process_signal and process_stopping in this
    interpreter. Returns callback, so it can be used as a decorator."""
    event_callbacks.append(callback)
    _hook_stopping()
    return callback


def subscribe_shutdown(callback):
    """Calls callback("process_stopping", shutdown_reason=...) when this process exits.
    Returns callback."""
    shutdown_callbacks.append(callback)
    _hook_stopping()
    return callback


def subscribe_signals(callback):
    """Calls callback("process_signal", signum=..., signame=...) when this
    daemon process gets SIGHUP or SIGUSR2. Outside daemon mode the callback is never
    called (logged at info level, as mod_wsgi 6 does). Returns callback."""
    if process_group:
        signal_callbacks.append(callback)
    else:
        import traceback

        stack = "".join(traceback.format_stack(limit=5)[:-1]).rstrip()
        _log(2, "mod_wsgi.subscribe_signals() called outside daemon mode; the callback "
                "will not be invoked. Signal callbacks are only delivered in daemon "
                "mode processes.\n%s" % stack)
    return callback


def request_data():
    """A dict private to the request this thread is serving (shared with event
    callbacks, and with active_requests under the request's id)."""
    key = _request_key()
    if key is None:
        raise RuntimeError("request_data() is only available while a request is served")
    data = active_requests.get(key)
    if data is None:
        data = active_requests[key] = {}
    return data


def _observe_start_response(start_response, request_id):
    def observed(status, headers, exc_info=None):
        event = {}
        if request_id is not None:
            event["request_id"] = request_id
        event["response_status"] = status
        event["response_headers"] = headers
        event["exception_info"] = exc_info
        event["request_data"] = request_data()
        _publish("response_started", event)
        if exc_info is None:
            return start_response(status, headers)
        return start_response(status, headers, exc_info)

    return observed
