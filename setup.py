"""Builds the mod_wsgi_rs Apache module against the interpreter running the install
(so a venv's Python is the one the module embeds) and the wsgi-express binary, and
places both inside the mod_wsgi_rs package. Needs cargo and apxs; says so at once
when either is missing."""

import os
import shutil
import sys

from setuptools import setup
from setuptools_rust import Binding, RustExtension
from setuptools_rust.build import build_rust


class BuildRust(build_rust):
    """Checks the tools first, and links the interpreter running the build."""

    def run(self):
        missing = []
        if shutil.which("cargo") is None:
            missing.append(
                "cargo (a Rust toolchain: https://rustup.rs, then a new shell "
                "or PATH=$HOME/.cargo/bin:$PATH)")
        if not any(shutil.which(name) for name in ("apxs", "apxs2")):
            missing.append(
                "apxs (Apache's development files: Debian apache2-dev, "
                "Red Hat httpd-devel)")
        if missing:
            sys.exit("mod_wsgi_rs: cannot build the Apache module without "
                     + " and ".join(missing))
        # pyo3 links the CPython of PYO3_PYTHON; a venv's interpreter is a link to
        # its base installation, whose libpython Apache's children load.
        os.environ.setdefault("PYO3_PYTHON", os.path.realpath(sys.executable))
        super().run()


setup(
    rust_extensions=[
        RustExtension(
            "mod_wsgi_rs.mod_wsgi_rs",
            path="Cargo.toml",
            binding=Binding.NoBinding,
            py_limited_api=False,
        ),
        RustExtension(
            {"wsgi-express": "mod_wsgi_rs.wsgi-express"},
            path="crates/express/Cargo.toml",
            binding=Binding.Exec,
        ),
    ],
    cmdclass={"build_rust": BuildRust},
)
