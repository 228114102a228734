"""Build tocsin's optional C extension, ``tocsin._speedups`` (the rest is in pyproject.toml).

The extension is optional in every sense: it is not built on PyPy or other non-CPython
interpreters, on free-threaded CPython (its code relies on the GIL), or when
``TOCSIN_NO_EXTENSIONS`` is set; and a failed build (no compiler, no Python headers)
prints a warning and installs the pure-Python package instead of failing the install.
"""

from __future__ import annotations

import os
import platform
import sysconfig
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _wanted() -> bool:
    if os.environ.get("TOCSIN_NO_EXTENSIONS"):
        return False
    if platform.python_implementation() != "CPython":
        return False
    return not sysconfig.get_config_var("Py_GIL_DISABLED")


class OptionalBuildExt(build_ext):
    """build_ext that turns any failure to compile into a warning: tocsin works without it."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # a missing compiler surfaces as several error types
            self._skip(error)

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            self._skip(error)

    def _skip(self, error: Exception) -> None:
        print(
            f"WARNING: tocsin's C extension could not be built ({error}); "
            "installing the pure-Python version, which behaves the same, only slower."
        )


setup(
    ext_modules=[
        Extension(
            "tocsin._speedups",
            sources=["src/tocsin/_speedups.c"],
            optional=True,
        )
    ]
    if _wanted()
    else [],
    cmdclass={"build_ext": OptionalBuildExt},
)
