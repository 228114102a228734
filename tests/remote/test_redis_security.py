"""Redis AUTH and TLS come from the URL: tested against our own redis-server processes."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.remote.helpers import free_port, redis_pings, wait_for
from tocsin.remote import Envelope, PublishError, new_event
from tocsin.remote.redis import RedisStreamsTransport

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("openssl") is None,
    reason="needs the redis-server and openssl programs",
)

STREAM = "tests.secure.events"


@contextlib.contextmanager
def serving(arguments: list[str], url: str, workdir: Path) -> Iterator[None]:
    """Run our own redis-server with *arguments* until the block ends."""
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir), *arguments],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: redis_pings(url), what="redis-server to start")
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    port, password = free_port(), "correct horse battery staple"
    url = f"redis://:{quote(password)}@127.0.0.1:{port}/0"
    with serving(["--port", str(port), "--requirepass", password], url, tmp_path):
        yield port, password


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server that speaks TLS only, with a self-signed certificate made here."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    port = free_port()
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    arguments = [
        "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
        "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
    ]  # fmt: skip
    with serving(arguments, url, tmp_path):
        yield port, cert


def round_trip(transport: RedisStreamsTransport, envelope: Envelope) -> list[dict[str, object]]:
    """Publish one event and consume it back (acknowledged): returns its decoded kwargs."""
    transport.publish(STREAM, envelope.encode(new_event(STREAM, None, {"order": 7})))

    async def consume() -> list[dict[str, object]]:
        await transport.ensure_group(STREAM, "secure")
        deliveries = await transport.consume([STREAM], "secure", "c1", count=10, timeout=2)
        for delivery in deliveries:
            await delivery.ack()
        await transport.aclose()
        return [envelope.decode(delivery.data).kwargs for delivery in deliveries]

    try:
        return asyncio.run(consume())
    finally:
        transport.close()


def test_a_password_in_the_url_authenticates(password_server, envelope):
    port, password = password_server
    url = f"redis://:{quote(password)}@127.0.0.1:{port}/0"
    assert round_trip(RedisStreamsTransport(url), envelope) == [{"order": 7}]


def test_a_wrong_password_is_a_publish_error_not_a_silent_loss(password_server, envelope):
    port, _ = password_server
    transport = RedisStreamsTransport(f"redis://:wrong@127.0.0.1:{port}/0")
    with pytest.raises(PublishError):
        transport.publish(STREAM, envelope.encode(new_event(STREAM, None, {"order": 1})))
    transport.close()


def test_rediss_urls_speak_tls_with_the_given_ca(tls_server, envelope):
    port, cert = tls_server
    transport = RedisStreamsTransport(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}")
    assert round_trip(transport, envelope) == [{"order": 7}]


def test_a_tls_server_refuses_plain_connections(tls_server, envelope):
    port, _ = tls_server
    transport = RedisStreamsTransport(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(PublishError):
        transport.publish(STREAM, envelope.encode(new_event(STREAM, None, {"order": 1})))
    transport.close()
