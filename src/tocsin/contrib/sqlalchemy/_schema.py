"""pre_migrate / post_migrate around MetaData.create_all().

(Interface stub: implemented by the migrations work.)
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import MetaData
from sqlalchemy.engine import Connection


def install_schema(metadata: MetaData, using: Callable[[Connection], str]) -> None:
    """Send pre_migrate/post_migrate around every create_all() of *metadata*."""
    raise NotImplementedError


def uninstall_schema(metadata: MetaData) -> None:
    """Remove the listeners install_schema() added."""
    raise NotImplementedError
