"""Fixtures for the integration tests: real database engines (see databases.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.contrib.databases import DATABASES, drop_schema, make_engine


@pytest.fixture(params=DATABASES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A real database engine: SQLite in memory, SQLite in a file, and PostgreSQL."""
    engine, schema = make_engine(request.param, tmp_path)
    yield engine
    engine.dispose()
    if schema is not None:
        drop_schema(schema)


@pytest.fixture
def postgres_engine(tmp_path: Path) -> Iterator[Engine]:
    """A PostgreSQL engine (for what SQLite cannot show faithfully, such as savepoints)."""
    engine, schema = make_engine("postgresql", tmp_path)
    yield engine
    engine.dispose()
    assert schema is not None
    drop_schema(schema)
