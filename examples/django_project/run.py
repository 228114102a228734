"""The Django part of ``make demo``: ``python examples/django_project/run.py``.

A real Django project (SQLite in a temporary file, no services needed) with
``"tocsin.contrib.django"`` installed shows, in order:

1. a model save whose ``@tocsin.after_commit`` receiver waits for the commit;
2. a rolled-back save: the after-commit receiver never runs;
3. a remote receiver: an event published on commit, consumed by the Django worker that
   loads the model from the database (through Redis when one answers, else the
   in-process memory transport);
4. ``manage.py tocsin_inspect``: every signal and receiver of the project.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _redis(url: str) -> Any:
    """The Redis transport when a server answers at *url*, else None."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.close()
    except Exception:
        return None
    from tocsin.remote.redis import RedisStreamsTransport

    return RedisStreamsTransport(url, prefix=f"tocsin-demo:{uuid.uuid4().hex[:8]}:")


def _forget(transport: Any) -> None:
    """Delete the demo's keys from Redis."""
    prefix = getattr(transport, "prefix", None)
    if not prefix:
        return
    import redis

    client = redis.Redis.from_url(transport.url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


async def _work_until(worker: Any, done: Any) -> None:
    task = worker.start()
    try:
        async with asyncio.timeout(20):
            while not done():
                await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    await task


def main() -> None:
    sys.path.insert(0, str(HERE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
    from django.conf import settings
    from django.core.management import call_command
    from django.db import transaction

    import django

    database = Path(settings.DATABASES["default"]["NAME"])
    database.unlink(missing_ok=True)  # a fresh database each run
    django.setup()
    call_command("migrate", verbosity=0)

    from bakery import receivers
    from bakery.models import Cake
    from bakery.signals import cake_ordered

    from tocsin.contrib.django.codec import django_model_codec
    from tocsin.contrib.django.worker import django_worker
    from tocsin.remote import Envelope, Keyring, MemoryTransport, publish, unpublish

    def show() -> None:
        for line in receivers.log:
            print(f"   {line}")
        receivers.log.clear()

    print("1. Save a cake inside transaction.atomic(): the after-commit receiver waits.")
    with transaction.atomic():
        Cake.objects.create(flavour="lemon")
        print("   (still inside the transaction)")
        show()
    print("   (committed)")
    show()

    print("2. The same in a transaction that rolls back: the after-commit receiver is dropped.")
    with transaction.atomic():
        Cake.objects.create(flavour="burnt")
        transaction.set_rollback(True)
    show()
    print(f"   cakes in the database: {[str(cake) for cake in Cake.objects.all()]}")

    transport = _redis(settings.TOCSIN_BROKER_URL)
    where = "Redis" if transport is not None else "the memory transport (no Redis answered)"
    print(f"3. A remote receiver, through {where}: published on commit, run by the worker.")
    if transport is None:
        transport = MemoryTransport()
    keyring = Keyring({"demo": secrets.token_bytes(32)})
    envelope = Envelope(keyring, codec=django_model_codec())
    publish(cake_ordered, transport, envelope, on_commit=True)
    try:
        with transaction.atomic():
            cake = Cake.objects.create(flavour="chocolate")
            show()
            cake_ordered.send(sender=None, cake=cake)
            print("   cake_ordered sent inside the transaction: published at the commit")
        show()
        worker = django_worker(transport, envelope, groups=["bakery-oven"], poll_timeout=0.1)
        asyncio.run(_work_until(worker, lambda: any("worker:" in line for line in receivers.log)))
        show()
    finally:
        unpublish(cake_ordered, transport)
        _forget(transport)
        transport.close()

    print("4. python manage.py tocsin_inspect --only bakery (without --only: Django's too):")
    call_command("tocsin_inspect", "--only", "bakery")
    database.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
