"""tocsin's model-signals demo: Django's post_save and friends on a SQLAlchemy app.

A small blog on SQLite (a file in a temporary directory). Receivers react to saves and
deletes, an ``@after_commit`` receiver waits for the commit, and a rolled-back
transaction shows that its event is dropped. Run it with ``make demo`` (it runs after the
in-process demo) or ``python examples/models_demo.py`` with ``tocsin[sqlalchemy]``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from tocsin import after_commit, receiver
from tocsin.contrib import sqlalchemy as tocsin_sa
from tocsin.contrib.sqlalchemy import after_flush
from tocsin.signals import post_delete, post_save, pre_save


class Base(DeclarativeBase):
    pass


# Installed before the models are declared, so class_prepared reaches every class.
tocsin_sa.install(Base)


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    posts: Mapped[list[Post]] = relationship(back_populates="author", cascade="all")
    profile: Mapped[Profile | None] = relationship(back_populates="author", cascade="all")


class Profile(Base):
    __tablename__ = "profile"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="profile")


class Post(Base):
    __tablename__ = "post"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(back_populates="posts")


# -- receivers: what a Django project keeps in its signals.py ----------------------------


@receiver(pre_save, sender="Post")  # a lazy sender: the class is named, not imported
def tidy_title(sender: type[Post], instance: Post, **kwargs: Any) -> None:
    instance.title = instance.title.strip().capitalize()


@receiver(post_save, sender=Post)
def log_post_saved(instance: Post, created: bool, using: str, **kwargs: Any) -> None:
    verb = "created" if created else "updated"
    print(f"  [post_save] post {instance.id} {verb} on {using!r}: {instance.title!r}")


@receiver(post_save, sender=Author)
@after_flush  # uses the Session, which SQLAlchemy forbids during the flush itself
def give_new_authors_a_profile(instance: Author, created: bool, **kwargs: Any) -> None:
    if created:
        Session.object_session(instance).add(Profile(author=instance))  # type: ignore[union-attr]
        print(f"  [after_flush] profile added for {instance.name}")


@receiver(post_save, sender=Post)
@after_commit  # runs only once the transaction has committed
def notify_subscribers(instance: Post, created: bool, **kwargs: Any) -> None:
    if created:
        print(f"  [after_commit] emailing subscribers about {instance.title!r}")


@receiver(post_delete)
def log_deletes(sender: type, instance: Any, origin: Any, **kwargs: Any) -> None:
    why = f" (cascaded from {type(origin).__name__})" if origin is not instance else ""
    print(f"  [post_delete] {sender.__name__} {instance.id}{why}")


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        engine = create_engine(f"sqlite:///{Path(directory) / 'blog.db'}")
        Base.metadata.create_all(engine)

        print("1. Saving: pre_save tidies the title, post_save logs, after-commit waits.")
        with Session(engine) as session:
            ada = Author(name="Ada")
            session.add_all([ada, Post(title="  notes on the engine ", author=ada)])
            session.flush()
            print("   (flushed; the after-commit receiver has not run yet)")
            session.commit()

        print("2. Updating a post sends post_save with created=False.")
        with Session(engine) as session:
            post = session.scalars(select(Post)).one()
            post.title = "notes on the analytical engine"
            session.commit()

        print("3. A rolled-back transaction: post_save runs, the after-commit receiver never.")
        with Session(engine) as session:
            ada = session.scalars(select(Author)).one()
            session.add(Post(title="draft that will vanish", author=ada))
            session.flush()
            session.rollback()
        with Session(engine) as session:
            print(f"   posts in the database: {len(session.scalars(select(Post)).all())}")

        print("4. Deleting an author deletes her posts and profile too: one signal each.")
        with Session(engine) as session:
            session.delete(session.scalars(select(Author)).one())
            session.commit()
        engine.dispose()


if __name__ == "__main__":
    main()
