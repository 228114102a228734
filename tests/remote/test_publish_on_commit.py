"""Publishing model signals only once the transaction commits (SQLAlchemy on SQLite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from tests.remote.sample_models import Base, Customer
from tocsin.contrib import sqlalchemy as tocsin_sa
from tocsin.contrib.sqlalchemy import model_codec
from tocsin.remote import Envelope, MemoryTransport, publish, unpublish
from tocsin.signals import post_save

STREAM = "tocsin.signals.post_save"


@pytest.fixture
def factory(tmp_path) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    tocsin_sa.install(Base)
    Base.metadata.create_all(engine)
    yield sessionmaker(engine)
    tocsin_sa.uninstall(Base)
    engine.dispose()


@pytest.fixture
def published(factory, keyring) -> Iterator[tuple[MemoryTransport, Envelope]]:
    memory = MemoryTransport()
    envelope = Envelope(keyring, codec=model_codec(factory))
    publish(post_save, memory, envelope, sender=Customer, on_commit=True)
    yield memory, envelope
    unpublish(post_save, memory, sender=Customer)


def test_rolled_back_transaction_publishes_nothing(factory, published):
    memory, _ = published
    with factory() as session:
        session.add(Customer(email="ada@example.com"))
        session.flush()  # post_save is sent here, inside the transaction
        session.rollback()
    assert memory.messages(STREAM) == []


def test_committed_transaction_publishes_after_the_commit(factory, published):
    memory, envelope = published
    with factory() as session:
        session.add(Customer(email="ada@example.com"))
        session.flush()
        assert memory.messages(STREAM) == []  # not before the commit
        session.commit()
    [data] = memory.messages(STREAM)
    event = envelope.decode(data)
    assert event.signal == STREAM
    assert event.sender is Customer
    assert event.kwargs["created"] is True
    assert event.kwargs["instance"].email == "ada@example.com"
