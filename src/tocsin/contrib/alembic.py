"""pre_migrate / post_migrate around Alembic migrations.

Alembic runs migrations from the project's ``env.py`` and has no hook outside it, so the
signals are sent by a helper called there. In ``run_migrations_online()``::

    from tocsin.contrib.alembic import migration_signals

    with connectable.connect() as connection:
        with migration_signals(context, using="default") as on_version_apply:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                on_version_apply=on_version_apply,
            )
            with context.begin_transaction():
                context.run_migrations()

``pre_migrate`` is sent when the block starts, ``post_migrate`` when it ends without an
exception (after the migration transaction committed), both even when there is nothing
to migrate, as Django does. This works for the ``alembic`` command and for
``alembic.command.upgrade(config, "head")`` / ``downgrade(...)`` alike, since both run
``env.py``.

Arguments, with Django's names: ``sender`` and ``app_config`` are the Alembic ``Config``
(``context.config``: the object a program passes to ``alembic.command``, so receivers
can connect with ``sender=config``); ``verbosity=1``, ``interactive=False``,
``stdout`` = the Config's output stream, ``using`` as given, ``apps=None``. ``plan`` is
``None`` for ``pre_migrate`` (Alembic reveals steps only as it applies them) and, for
``post_migrate``, the list of applied steps: Alembic ``MigrationInfo`` objects, in order,
with ``is_upgrade`` (False for a downgrade step, Django's ``backwards``) and
``is_stamp``. Offline (``--sql``) runs change no database and send nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator, Mapping
from typing import Any, Protocol

from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo

from tocsin._dispatcher import Signal
from tocsin.signals import post_migrate, pre_migrate

__all__ = ["MigrationPlan", "migration_signals"]


class _EnvironmentContext(Protocol):
    """What the helper needs of ``alembic.context`` (the module proxy in env.py)."""

    @property
    def config(self) -> Config: ...

    def is_offline_mode(self) -> bool: ...


class MigrationPlan:
    """An ``on_version_apply`` callback that records each applied step in ``steps``."""

    def __init__(self) -> None:
        self.steps: list[MigrationInfo] = []

    def __call__(
        self,
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        """Record *step* (Alembic calls this once per step, inside its transaction)."""
        self.steps.append(step)


@contextlib.contextmanager
def migration_signals(
    context: _EnvironmentContext, *, using: str = "default"
) -> Iterator[MigrationPlan]:
    """Send pre_migrate now and post_migrate when the block ends; yields the callback
    to pass as ``context.configure(on_version_apply=...)``.

    *context* is ``alembic.context`` in env.py; *using* is passed to receivers as the
    database alias. ``post_migrate`` is not sent if the block raises.
    """
    plan = MigrationPlan()
    if context.is_offline_mode():
        yield plan
        return
    config = context.config
    _send(pre_migrate, config, using, plan=None)
    yield plan
    _send(post_migrate, config, using, plan=list(plan.steps))


def _send(signal: Signal, config: Config, using: str, plan: list[MigrationInfo] | None) -> None:
    signal.send(
        sender=config,
        app_config=config,
        verbosity=1,
        interactive=False,
        stdout=config.stdout,
        using=using,
        plan=plan,
        apps=None,
    )
