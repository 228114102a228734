"""pre_migrate / post_migrate from MetaData.create_all() and from Alembic migrations.

The Alembic tests build a real migration directory (alembic.ini, env.py using
``tocsin.contrib.alembic.migration_signals``, two revisions) and run it with
``alembic.command`` against SQLite files and PostgreSQL (a schema of its own).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, event, inspect
from sqlalchemy.engine import Connection, Engine

from tocsin.contrib.sqlalchemy import _schema
from tocsin.contrib.sqlalchemy._schema import install_schema, uninstall_schema
from tocsin.signals import post_migrate, pre_migrate

DJANGO_ARGS = {"app_config", "verbosity", "interactive", "stdout", "using", "plan", "apps"}


class Recorder:
    """Connected to pre_migrate and post_migrate: records (signal name, sender, kwargs)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, dict[str, Any]]] = []

    def __call__(self, signal: Any, sender: object, **kwargs: Any) -> None:
        self.calls.append((signal.name, sender, kwargs))

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    pre_migrate.connect(recorder)
    post_migrate.connect(recorder)
    yield recorder
    pre_migrate.disconnect(recorder)
    post_migrate.disconnect(recorder)


def make_metadata() -> MetaData:
    metadata = MetaData()
    Table("authors", metadata, Column("id", Integer, primary_key=True))
    Table("books", metadata, Column("id", Integer, primary_key=True))
    return metadata


def alias(connection: Connection) -> str:
    return f"db-{connection.dialect.name}"


# -- MetaData.create_all() --------------------------------------------------------------


def test_create_all_sends_pre_and_post_migrate(engine: Engine, recorder: Recorder) -> None:
    metadata = make_metadata()
    install_schema(metadata, alias)
    for table in metadata.tables.values():
        event.listen(
            table,
            "after_create",
            lambda table, *args, **kw: recorder.calls.append((f"created {table.name}", table, {})),
        )
    try:
        metadata.create_all(engine)
    finally:
        uninstall_schema(metadata)
    assert recorder.names == ["pre_migrate", "created authors", "created books", "post_migrate"]
    del recorder.calls[1:3]
    for _, sender, kwargs in recorder.calls:
        assert sender is metadata
        assert set(kwargs) == {*DJANGO_ARGS, "tables"}
        assert kwargs["app_config"] is metadata
        assert kwargs["verbosity"] == 1
        assert kwargs["interactive"] is False
        assert kwargs["stdout"] is sys.stdout
        assert kwargs["using"] == f"db-{engine.dialect.name}"
        assert kwargs["plan"] is None
        assert kwargs["apps"] is None
        assert [table.name for table in kwargs["tables"]] == ["authors", "books"]
    assert {"authors", "books"} <= set(inspect(engine).get_table_names())


def test_create_all_with_nothing_to_create_still_sends_both(
    engine: Engine, recorder: Recorder
) -> None:
    metadata = make_metadata()
    metadata.create_all(engine)
    install_schema(metadata, alias)
    try:
        metadata.create_all(engine)
    finally:
        uninstall_schema(metadata)
    assert recorder.names == ["pre_migrate", "post_migrate"]
    assert [kwargs["tables"] for _, _, kwargs in recorder.calls] == [[], []]


def test_only_missing_tables_are_listed(postgres_engine: Engine, recorder: Recorder) -> None:
    metadata = make_metadata()
    metadata.tables["authors"].create(postgres_engine)
    install_schema(metadata, alias)
    try:
        metadata.create_all(postgres_engine)
    finally:
        uninstall_schema(metadata)
    assert [[t.name for t in kwargs["tables"]] for _, _, kwargs in recorder.calls] == [
        ["books"],
        ["books"],
    ]


def test_a_failing_pre_migrate_receiver_stops_create_all(postgres_engine: Engine) -> None:
    metadata = make_metadata()
    install_schema(metadata, alias)

    def refuse(sender: object, **kwargs: Any) -> None:
        raise RuntimeError("not today")

    pre_migrate.connect(refuse, sender=metadata)
    try:
        with pytest.raises(RuntimeError, match="not today"):
            metadata.create_all(postgres_engine)
    finally:
        pre_migrate.disconnect(refuse, sender=metadata)
        uninstall_schema(metadata)
    assert inspect(postgres_engine).get_table_names() == []


def test_install_is_idempotent_and_uninstall_removes_everything(recorder: Recorder) -> None:
    metadata = make_metadata()
    engine = create_engine("sqlite://")
    install_schema(metadata, alias)
    install_schema(metadata, lambda connection: "replaced")
    metadata.create_all(engine)
    assert recorder.names == ["pre_migrate", "post_migrate"]  # once each, not twice
    assert {kwargs["using"] for _, _, kwargs in recorder.calls} == {"replaced"}
    uninstall_schema(metadata)
    uninstall_schema(metadata)
    for name, listener in (
        ("before_create", _schema._before_create),
        ("after_create", _schema._after_create),
    ):
        assert not event.contains(metadata, name, listener)
    metadata.create_all(engine)
    assert len(recorder.calls) == 2
    engine.dispose()


# -- Alembic ----------------------------------------------------------------------------

ALEMBIC_INI = """\
[alembic]
script_location = %(here)s/migrations
sqlalchemy.url = {url}

[loggers]
keys = root

[handlers]
keys =

[formatters]
keys =

[logger_root]
level = WARNING
handlers =
"""

ENV_PY = """\
from alembic import context
from sqlalchemy import engine_from_config, pool

from tocsin.contrib.alembic import migration_signals

config = context.config


def run_migrations(connection):
    with migration_signals(context, using="default") as on_version_apply:
        context.configure(connection=connection, on_version_apply=on_version_apply)
        with context.begin_transaction():
            context.run_migrations()


def run_migrations_offline():
    with migration_signals(context, using="default") as on_version_apply:
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), on_version_apply=on_version_apply
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif config.attributes.get("connection") is not None:
    # A program passed its own connection (see the tests' PostgreSQL schema).
    run_migrations(config.attributes["connection"])
else:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        run_migrations(connection)
"""

SCRIPT_MAKO = '''\
"""${message}"""
from alembic import op
import sqlalchemy as sa

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
'''

REVISION = '''\
"""create {table}"""
from alembic import op
import sqlalchemy as sa

revision = "{revision}"
down_revision = {down_revision!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("{table}")
'''


def migration_project(tmp_path: Path, url: str) -> Config:
    """A real Alembic project in *tmp_path*: two revisions creating authors, then books."""
    root = tmp_path / "project"
    versions = root / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / "alembic.ini").write_text(ALEMBIC_INI.format(url=url))
    (root / "migrations" / "env.py").write_text(ENV_PY)
    (root / "migrations" / "script.py.mako").write_text(SCRIPT_MAKO)
    (versions / "0001_authors.py").write_text(
        REVISION.format(table="authors", revision="0001", down_revision=None)
    )
    (versions / "0002_books.py").write_text(
        REVISION.format(table="books", revision="0002", down_revision="0001")
    )
    return Config(str(root / "alembic.ini"))


def sqlite_project(tmp_path: Path) -> tuple[Config, Engine]:
    database = tmp_path / "alembic.db"
    return migration_project(tmp_path, f"sqlite:///{database}"), create_engine(
        f"sqlite:///{database}"
    )


def test_alembic_upgrade_sends_pre_and_post_migrate_with_the_plan(
    tmp_path: Path, recorder: Recorder
) -> None:
    config, engine = sqlite_project(tmp_path)
    tables_at_post_migrate: list[set[str]] = []

    def check(sender: object, **kwargs: Any) -> None:
        # Sent after the migration transaction: a new connection sees the tables.
        tables_at_post_migrate.append(set(inspect(engine).get_table_names()))

    post_migrate.connect(check, sender=config)
    try:
        command.upgrade(config, "head")
    finally:
        post_migrate.disconnect(check, sender=config)
    assert recorder.names == ["pre_migrate", "post_migrate"]
    (_, pre_sender, pre), (_, post_sender, post) = recorder.calls
    assert pre_sender is config
    assert post_sender is config
    assert set(pre) == set(post) == DJANGO_ARGS
    assert pre["app_config"] is config
    assert pre["using"] == "default"
    assert pre["stdout"] is config.stdout
    assert (pre["verbosity"], pre["interactive"], pre["apps"]) == (1, False, None)
    assert pre["plan"] is None
    assert [(step.up_revision_id, step.is_upgrade) for step in post["plan"]] == [
        ("0001", True),
        ("0002", True),
    ]
    assert tables_at_post_migrate == [{"alembic_version", "authors", "books"}]
    engine.dispose()


def test_alembic_with_nothing_to_do_sends_both_with_an_empty_plan(
    tmp_path: Path, recorder: Recorder
) -> None:
    config, engine = sqlite_project(tmp_path)
    command.upgrade(config, "head")
    recorder.calls.clear()
    command.upgrade(config, "head")
    assert recorder.names == ["pre_migrate", "post_migrate"]
    assert recorder.calls[1][2]["plan"] == []
    engine.dispose()


def test_alembic_downgrade_plan_has_backward_steps(tmp_path: Path, recorder: Recorder) -> None:
    config, engine = sqlite_project(tmp_path)
    command.upgrade(config, "head")
    recorder.calls.clear()
    command.downgrade(config, "base")
    plan = recorder.calls[1][2]["plan"]
    assert [(step.up_revision_id, step.is_upgrade) for step in plan] == [
        ("0002", False),
        ("0001", False),
    ]
    assert inspect(engine).get_table_names() == ["alembic_version"]
    engine.dispose()


def test_alembic_failure_sends_no_post_migrate(tmp_path: Path, recorder: Recorder) -> None:
    config, engine = sqlite_project(tmp_path)
    versions = tmp_path / "project" / "migrations" / "versions"
    (versions / "0003_broken.py").write_text(
        REVISION.format(table="authors", revision="0003", down_revision="0002")
    )  # creates "authors" again: fails
    with pytest.raises(Exception, match="authors"):
        command.upgrade(config, "head")
    assert recorder.names == ["pre_migrate"]
    engine.dispose()


def test_alembic_offline_mode_sends_nothing(
    tmp_path: Path, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    config, engine = sqlite_project(tmp_path)
    command.upgrade(config, "head", sql=True)
    assert recorder.calls == []
    engine.dispose()


def test_alembic_on_postgresql(
    postgres_engine: Engine, tmp_path: Path, recorder: Recorder
) -> None:
    config = migration_project(tmp_path, str(postgres_engine.url))
    with postgres_engine.connect() as connection:
        config.attributes["connection"] = connection  # runs in this test's own schema
        command.upgrade(config, "head")
        command.upgrade(config, "head")
    assert recorder.names == ["pre_migrate", "post_migrate"] * 2
    plans = [kwargs["plan"] for name, _, kwargs in recorder.calls if name == "post_migrate"]
    assert [[step.up_revision_id for step in plan] for plan in plans] == [["0001", "0002"], []]
    assert set(inspect(postgres_engine).get_table_names()) == {
        "alembic_version",
        "authors",
        "books",
    }
