"""How soon each ASGI server lets ``request_finished`` follow a client's disconnect.

    python scripts/asgi_disconnects.py [uvicorn,hypercorn,daphne,granian,gunicorn] [-- ARGS]

For each server found in this environment, three apps behind ``ASGISignalsMiddleware``
start a streamed response; the client reads the first chunk, then closes the connection.
``/listen`` waits on ``receive()``; ``/stream`` only sends, every 50 ms; ``/starlette``
is Starlette's ``StreamingResponse``. It prints the seconds from the close to
``request_finished`` ("none" if it did not come within 12 s). ARGS after ``--`` go to
every server (``--asgi-disconnect-grace-period 0``, say). A tool for the README's table,
not a test: the figures depend on the servers' versions and settings.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

APP = """
import asyncio, os, time
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route
from tocsin.contrib.asgi import ASGISignalsMiddleware
from tocsin.signals import request_finished

def finished(sender, **kwargs):
    with open(os.environ["DISCONNECTS_LOG"], "a") as log:
        log.write(f"{time.time()}\\n")

request_finished.connect(finished, weak=False)

async def chunks():
    yield b"first\\n"
    for _ in range(400):
        await asyncio.sleep(0.05)
        yield b"x\\n"

async def streaming(request):
    return StreamingResponse(chunks())

starlette = Starlette(routes=[Route("/starlette", streaming)])

async def raw(scope, receive, send):
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/starlette":
        return await starlette(scope, receive, send)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"first\\n", "more_body": True})
    if scope["path"] == "/listen":
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    for _ in range(400):
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"x\\n", "more_body": True})
    await send({"type": "http.response.body", "body": b""})

app = ASGISignalsMiddleware(raw)
"""

SERVERS = {
    "uvicorn": ["-m", "uvicorn", "--host", "127.0.0.1", "--port", "{port}", "--log-level",
                "warning", "disconnects:app"],
    "hypercorn": ["-m", "hypercorn", "-b", "127.0.0.1:{port}", "disconnects:app"],
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "disconnects:app"],
    "granian": ["-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port",
                "{port}", "disconnects:app"],
    "gunicorn": ["-m", "gunicorn", "-k", "asgi", "-b", "127.0.0.1:{port}",
                 "--no-control-socket", "disconnects:app"],
}  # fmt: skip


def measure(server: str, path: str, extra: list[str], directory: Path) -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = directory / "finished.log"
    log.write_text("")
    args = [a.replace("{port}", str(port)) for a in SERVERS[server]]
    process = subprocess.Popen(
        [sys.executable, *args[:-1], *extra, args[-1]],
        cwd=directory,
        env={**os.environ, "DISCONNECTS_LOG": str(log)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = _connect(port)
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        received = b""
        while b"first" not in received:
            received += client.recv(1024)
        closed = time.time()
        client.close()
        deadline = closed + 12
        while time.time() < deadline and not log.read_text():
            time.sleep(0.02)
        times = log.read_text().split()
        return f"{float(times[0]) - closed:.2f} s" if times else "none"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _connect(port: int) -> socket.socket:
    for _ in range(300):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=15)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no server on port {port}")


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    wanted = argv[0].split(",") if argv else list(SERVERS)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        (directory / "disconnects.py").write_text(APP)
        for server in wanted:
            if importlib.util.find_spec(server) is None:
                print(f"{server}: not installed")
                continue
            figures = [f"{p} {measure(server, p, extra, directory)}" for p in PATHS]
            label = " ".join([server, *extra])
            print(f"{label}: " + ", ".join(figures), flush=True)
    return 0


PATHS = ["/listen", "/stream", "/starlette"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
