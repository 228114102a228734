"""The same model signals with AsyncSession: sync receivers, and async receivers awaited."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.contrib.databases import async_engine, drop_schema
from tests.contrib.test_sqlalchemy_models import declare_models
from tocsin.contrib import sqlalchemy as tsa
from tocsin.signals import m2m_changed, post_init, post_save


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_async_session_sends_to_sync_and_async_receivers(kind: str, tmp_path: Path) -> None:
    engine, schema = async_engine(kind, tmp_path)
    m = declare_models()
    tsa.install(m.Base, sessions=AsyncSession, using={engine: "async"})
    calls: list[tuple[str, Any]] = []

    def sync_receiver(sender: Any, instance: Any, created: bool, using: str, **kw: Any) -> None:
        calls.append(("sync", (instance.name, created, using)))

    async def async_receiver(sender: Any, instance: Any, created: bool, **kw: Any) -> None:
        await asyncio.sleep(0)
        calls.append(("async", (instance.name, created)))

    async def on_load(sender: Any, instance: Any, **kw: Any) -> None:
        calls.append(("loaded", instance.name))

    async def on_m2m(sender: Any, action: str, pk_set: Any, **kw: Any) -> None:
        calls.append((action, pk_set))

    @tsa.after_flush
    async def create_profile(sender: Any, instance: Any, created: bool, **kw: Any) -> None:
        if created:
            await asyncio.sleep(0)
            session = AsyncSession.object_session(instance)  # the sync Session
            session.add(m.Profile(user=instance))  # type: ignore[union-attr]

    # Constructing an object is sync: a coroutine receiver of post_init could not be
    # awaited from a running loop, so build them before connecting it.
    user = m.User(name="ada")
    article = m.Article(title="a", tags=[m.Tag(name="t")])
    post_save.connect(sync_receiver, sender=m.User, weak=False)
    post_save.connect(async_receiver, sender=m.User, weak=False)
    post_save.connect(create_profile, sender=m.User, weak=False)
    post_init.connect(on_load, sender=m.User, weak=False)
    m2m_changed.connect(on_m2m, weak=False)

    async def scenario() -> None:
        async with engine.begin() as connection:
            await connection.run_sync(m.Base.metadata.create_all)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            session.add_all([user, article])
            await session.commit()
            user.name = "grace"
            await session.commit()
        async with AsyncSession(engine) as session:
            loaded = (await session.scalars(select(m.User))).one()
            profile = (await session.scalars(select(m.Profile))).one()
            assert profile.user_id == loaded.id
        await engine.dispose()

    try:
        asyncio.run(scenario())
    finally:
        connected: list[tuple[Any, Any]] = [
            (post_save, sync_receiver),
            (post_save, async_receiver),
            (post_save, create_profile),
            (post_init, on_load),
        ]
        for signal, receiver in connected:
            signal.disconnect(receiver, sender=m.User)
        m2m_changed.disconnect(on_m2m)
        tsa.uninstall(m.Base)
        if schema is not None:
            drop_schema(schema)
    assert calls == [
        ("sync", ("ada", True, "async")),
        ("async", ("ada", True)),
        ("pre_add", {1}),
        ("post_add", {1}),
        ("sync", ("grace", False, "async")),
        ("async", ("grace", False)),
        ("loaded", "grace"),
    ]


def test_async_receiver_failure_aborts_the_flush(tmp_path: Path) -> None:
    engine, _ = async_engine("sqlite", tmp_path)
    m = declare_models()
    tsa.install(m.Base, sessions=AsyncSession)

    async def refuse(sender: Any, **kw: Any) -> None:
        raise ValueError("refused")

    post_save.connect(refuse, sender=m.User, weak=False)

    async def scenario() -> list[Any]:
        async with engine.begin() as connection:
            await connection.run_sync(m.Base.metadata.create_all)
        async with AsyncSession(engine) as session:
            session.add(m.User(name="ada"))
            with pytest.raises(ValueError, match="refused"):
                await session.commit()
            await session.rollback()
            names = (await session.scalars(select(m.User.name))).all()
        await engine.dispose()
        return list(names)

    try:
        assert asyncio.run(scenario()) == []
    finally:
        post_save.disconnect(refuse, sender=m.User)
        tsa.uninstall(m.Base)
