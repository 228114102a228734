"""Nothing is printed at interpreter exit.

When the interpreter finalizes, module-level receivers and senders die while modules
(``logging`` among them) are being torn down, and their weak-reference callbacks run
then. A callback that touches a torn-down module prints ``Exception ignored in: <bound
method Signal._receiver_died ...>`` on stderr (seen on CPython 3.13 with a Flask test
client). Each script here runs in a fresh interpreter, the one running the tests (the
suite runs on every supported CPython), and must leave stderr empty.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

RECEIVERS = """
    import logging
    import tocsin
    from tocsin.signals import request_finished, request_started

    LOGGING

    ping = tocsin.Signal(name="ping")

    @tocsin.receiver([ping, request_started, request_finished])
    def on_anything(sender, **kwargs):
        return "seen"

    class Handler:
        def on_ping(self, **kwargs):
            return "handled"

    class Sender:
        pass

    handler = Handler()
    senders = [Sender() for _ in range(3)]
    ping.connect(handler.on_ping)
    for sender in senders:
        ping.connect(on_anything, sender=sender)  # weakly held senders, dying at exit
        assert ping.send(sender)
    assert ping.send(None)
"""

FLASK_CLIENT = """
    import flask
    from tocsin.contrib.flask import install

    app = flask.Flask(__name__)

    @app.route("/")
    def index():
        return "ok"

    install(app)
    assert app.test_client().get("/").status_code == 200
"""

SCRIPTS = {
    "module-level receivers": RECEIVERS.replace("LOGGING", ""),
    "with debug logging on": RECEIVERS.replace(
        "LOGGING", "logging.basicConfig(level=logging.DEBUG)"
    ),
    "with a Flask test client": RECEIVERS.replace("LOGGING", "") + FLASK_CLIENT,
}


@pytest.mark.parametrize("script", SCRIPTS)
def test_nothing_is_printed_at_exit(script: str, tmp_path: Path) -> None:
    if "flask" in script:
        pytest.importorskip("flask")
    # Run as a script (__main__), as a user's program is: its globals are cleared last.
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(SCRIPTS[script]))

    result = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0
    assert result.stderr == ""
