"""The ``mod_wsgi-express``/``wsgi-express`` commands: run the packaged wsgi-express
with this package's module, and this environment as the Python home."""

import os
import sys

from .. import express_executable, module_location

__all__ = ["main", "command_environment", "start_server"]


def command_environment():
    """The environment wsgi-express runs in: it finds the module through
    MOD_WSGI_RS_MODULE and takes VIRTUAL_ENV as the Python home."""
    env = dict(os.environ)
    env["MOD_WSGI_RS_MODULE"] = module_location()
    if "VIRTUAL_ENV" not in env and sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    return env


def start_server(*args):
    """Replaces this process with ``wsgi-express start-server ARGS``."""
    _exec(["start-server", *args])


def _exec(args):
    program = express_executable()
    os.execve(program, [program, *args], command_environment())


def main():
    _exec(sys.argv[1:])


if __name__ == "__main__":
    main()
