"""A FastAPI app wrapped in ASGISignalsMiddleware, for servers run in another process.

Under gunicorn (tests/contrib/test_asgi.py), each request signal appends a line to
$TOCSIN_TEST_LOG: the server's process is not the test's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from tocsin.contrib.asgi import ASGISignalsMiddleware
from tocsin.signals import got_request_exception, request_finished, request_started

api = FastAPI()


@api.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom")


app = ASGISignalsMiddleware(api)

if "TOCSIN_TEST_LOG" in os.environ:
    _log = Path(os.environ["TOCSIN_TEST_LOG"])

    def _noting(name: str) -> Any:
        def note(sender: Any, **kwargs: Any) -> None:
            with _log.open("a") as file:
                file.write(name + "\n")

        return note

    for _signal, _name in [
        (request_started, "started"),
        (got_request_exception, "exception"),
        (request_finished, "finished"),
    ]:
        _signal.connect(_noting(_name), weak=False)
