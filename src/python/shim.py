# Per-interpreter support objects of mod_wsgi_rs.
#
# Executed into the namespace of a fresh `mod_wsgi` module in every interpreter, after the
# native function `_log(level, text)` has been placed there. Everything here is plain Python
# so that no type object is shared between interpreters.

import sys


class LogStream:
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

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if self._pending:
            pending, self._pending = self._pending, ""
            self._emit(pending)

    def close(self):
        self.flush()

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def seekable(self):
        return False


class RestrictedStream:
    """Stands in for sys.stdin/sys.stdout when WSGIRestrictStdin/Stdout is On."""

    def __init__(self, name):
        self.name = name

    def _refuse(self, *args, **kwargs):
        raise OSError("%s access restricted by mod_wsgi" % self.name)

    read = readline = readlines = write = writelines = flush = fileno = __iter__ = _refuse


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


def _install_streams(restrict_stdin, restrict_stdout):
    sys.stderr = LogStream(lambda line: _log(0, line), "<stderr>")
    if restrict_stdout:
        sys.stdout = RestrictedStream("sys.stdout")
    else:
        sys.stdout = LogStream(lambda line: _log(0, line), "<stdout>")
    if restrict_stdin:
        sys.stdin = RestrictedStream("sys.stdin")
