"""A mapped model for the after-commit publishing test (module-level, so it has a path)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Installed (tocsin.contrib.sqlalchemy.install) only while a test uses it."""


class Customer(Base):
    __tablename__ = "customer"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]
