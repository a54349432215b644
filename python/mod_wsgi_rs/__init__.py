"""mod_wsgi_rs installed with pip: the Apache module built for this interpreter and the
wsgi-express command that serves an application with it."""

import glob
import os

__all__ = ["module_location", "express_executable", "where"]

_HERE = os.path.dirname(os.path.abspath(__file__))


def module_location():
    """Path of the Apache module (for a LoadModule line), as mod_wsgi's
    ``mod_wsgi.server.module_location()``."""
    found = sorted(glob.glob(os.path.join(_HERE, "mod_wsgi_rs*.so")))
    if not found:
        raise RuntimeError("mod_wsgi_rs: the Apache module is missing from " + _HERE)
    return found[0]


def express_executable():
    """Path of the wsgi-express program installed with the package."""
    return os.path.join(_HERE, "wsgi-express")


def where():
    """Directory the package is installed in."""
    return _HERE
