"""WSGI apps whose responses servers treat specially, for tests/contrib/test_wsgi.py.

``/one`` returns a one-item list (wsgiref gives it a Content-Length); ``/file`` returns
the server's ``wsgi.file_wrapper`` around a file that notes each ``read()`` in a log
(a server sending it with ``sendfile`` never reads it). Under gunicorn, in another
process, ``bare`` and ``wrapped`` come from $TOCSIN_TEST_FILE and $TOCSIN_TEST_LOG, and
the log also gets a line per request signal.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tocsin.contrib.wsgi import WSGISignalsMiddleware
from tocsin.signals import request_finished

BODY = b"hello"


class LoggedFile(io.FileIO):
    """A file that appends ``read`` to *log* each time it is read."""

    def __init__(self, path: Path, log: Path) -> None:
        super().__init__(path, "r")
        self.log = log

    def read(self, size: int | None = -1) -> bytes:
        note(self.log, "read")
        return super().read(size)

    def readinto(self, buffer: Any) -> int | None:
        note(self.log, "read")
        return super().readinto(buffer)


def note(log: Path, line: str) -> None:
    with log.open("a") as file:
        file.write(line + "\n")


def make_app(file: Path, log: Path) -> Any:
    """The raw WSGI app serving ``/one`` and ``/file``."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        if environ["PATH_INFO"] == "/file":
            wrapper = environ["wsgi.file_wrapper"]
            response: Iterable[bytes] = wrapper(LoggedFile(file, log), 4096)
            return response
        return [BODY]

    return app


if "TOCSIN_TEST_LOG" in os.environ:
    _log = Path(os.environ["TOCSIN_TEST_LOG"])
    bare = make_app(Path(os.environ["TOCSIN_TEST_FILE"]), _log)
    wrapped = WSGISignalsMiddleware(bare)

    def _finished(sender: Any, **kwargs: Any) -> None:
        note(_log, "finished")

    request_finished.connect(_finished, weak=False)
