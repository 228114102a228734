"""Model signals from the SQLAlchemy ORM, on real databases (SQLite memory/file, PostgreSQL)."""
# mypy: disable-error-code="misc,name-defined,valid-type"

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import ForeignKey, String, delete, event, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
)

from tocsin import after_commit, receiver
from tocsin._lazy import registry
from tocsin.contrib import sqlalchemy as tsa
from tocsin.signals import (
    class_prepared,
    connection_created,
    m2m_changed,
    post_delete,
    post_init,
    post_save,
    pre_delete,
    pre_init,
    pre_save,
)

MODEL_SIGNALS = [pre_init, post_init, pre_save, post_save, pre_delete, post_delete, m2m_changed]


@dataclass
class Recorder:
    """Records (signal name, sender, kwargs) for every signal it is connected to."""

    calls: list[tuple[str, Any, dict[str, Any]]] = field(default_factory=list)
    connected: list[Any] = field(default_factory=list)

    def __call__(self, sender: Any, signal: Any, **kwargs: Any) -> None:
        self.calls.append((signal.name, sender, kwargs))

    def connect(self, *signals: Any, sender: Any = None) -> Recorder:
        for signal in signals:
            signal.connect(self, sender=sender, weak=False)
            self.connected.append(signal)
        return self

    def disconnect(self) -> None:
        for signal in self.connected:
            signal.disconnect(self)

    def names(self, *only: str) -> list[str]:
        return [name for name, _, _ in self.calls if not only or name in only]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for n, _, kwargs in self.calls if n == name]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.disconnect()


def declare_models() -> SimpleNamespace:
    """A fresh declarative base with users, profiles, articles, comments (cascade) and tags."""

    class Base(DeclarativeBase):
        pass

    return SimpleNamespace(Base=Base, **declare_classes(Base))


def declare_classes(Base: Any) -> dict[str, Any]:
    from sqlalchemy import Column, Table

    article_tag = Table(
        "article_tag",
        Base.metadata,
        Column("article_id", ForeignKey("article.id"), primary_key=True),
        Column("tag_id", ForeignKey("tag.id"), primary_key=True),
    )

    class User(Base):
        __tablename__ = "user_account"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))

    class Profile(Base):
        __tablename__ = "profile"
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
        user: Mapped[User] = relationship()

    class Article(Base):
        __tablename__ = "article"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(50), default="")
        comments: Mapped[list[Comment]] = relationship(cascade="all, delete-orphan")
        tags: Mapped[list[Tag]] = relationship(secondary=article_tag, back_populates="articles")

    class Comment(Base):
        __tablename__ = "comment"
        id: Mapped[int] = mapped_column(primary_key=True)
        article_id: Mapped[int] = mapped_column(ForeignKey("article.id"))
        text: Mapped[str] = mapped_column(String(50), default="")

    class Tag(Base):
        __tablename__ = "tag"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50), default="")
        articles: Mapped[list[Article]] = relationship(
            secondary=article_tag, back_populates="tags"
        )

    return {
        "User": User,
        "Profile": Profile,
        "Article": Article,
        "Comment": Comment,
        "Tag": Tag,
        "article_tag": article_tag,
    }


@pytest.fixture
def models(engine: Engine) -> Iterator[SimpleNamespace]:
    """Models installed on a real database; uninstalled (and their names forgotten) after."""
    m = declare_models()
    tsa.install(m.Base, using={engine: "primary"})
    m.Base.metadata.create_all(engine)
    m.engine = engine
    yield m
    tsa.uninstall(m.Base)


# -- install / uninstall --------------------------------------------------------------------


def test_install_twice_is_harmless(models: SimpleNamespace, recorder: Recorder) -> None:
    tsa.install(models.Base)
    recorder.connect(post_save)
    with Session(models.engine) as session:
        session.add(models.User(name="ada"))
        session.commit()
    assert recorder.names() == ["post_save"]


def test_uninstall_removes_every_listener_and_signals_stop(engine: Engine) -> None:
    m = declare_models()
    tsa.install(m.Base, using={engine: "primary"})
    installation = tsa._installations[m.Base]
    listeners = list(installation.listeners)
    attribute_listeners = list(installation.m2m.attribute_listeners)
    assert attribute_listeners == []  # m2m tracking starts once mappers are configured
    m.Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(m.Article(tags=[m.Tag()]))
        session.commit()
    attribute_listeners = list(installation.m2m.attribute_listeners)
    assert attribute_listeners
    assert all(event.contains(t, n, fn) for t, n, fn, _ in listeners)

    tsa.uninstall(m.Base)
    assert not tsa.installed(m.Base)
    assert not any(event.contains(t, n, fn) for t, n, fn, _ in listeners)
    assert not any(event.contains(t, n, fn) for t, n, fn in attribute_listeners)
    assert registry.resolve("Article") is None  # its names are forgotten

    calls = Recorder().connect(*MODEL_SIGNALS)
    try:
        with Session(engine) as session:
            session.add(m.Article(tags=[m.Tag()]))
            session.commit()
            session.delete(session.scalars(select(m.Article)).first())
            session.commit()
        assert calls.calls == []
    finally:
        calls.disconnect()


def test_install_refuses_what_is_not_a_declarative_base() -> None:
    with pytest.raises(TypeError, match="declarative base"):
        tsa.install(Session)


# -- pre_init / post_init -------------------------------------------------------------------


def test_pre_init_gets_the_constructor_arguments(models: SimpleNamespace, recorder: Recorder):
    recorder.connect(pre_init, post_init)
    user = models.User(name="ada")
    assert recorder.calls == [
        ("pre_init", models.User, {"args": (), "kwargs": {"name": "ada"}}),
        ("post_init", models.User, {"instance": user}),
    ]


def test_post_init_once_for_a_subclass_that_calls_super(
    models: SimpleNamespace, recorder: Recorder
) -> None:
    class Admin(models.User):
        level: Mapped[int] = mapped_column(default=1, nullable=True)

        def __init__(self, name: str, level: int) -> None:
            super().__init__(name=name, level=level)

    try:
        recorder.connect(pre_init, post_init)
        admin = Admin("ada", 3)
        assert recorder.calls == [
            ("pre_init", Admin, {"args": ("ada", 3), "kwargs": {}}),
            ("post_init", Admin, {"instance": admin}),
        ]
    finally:
        registry.forget(Admin)


def test_post_init_on_load_but_not_on_refresh(models: SimpleNamespace, recorder: Recorder):
    with Session(models.engine) as session:
        session.add(models.User(name="ada"))
        session.commit()
    recorder.connect(pre_init, post_init)
    with Session(models.engine) as session:
        user = session.scalars(select(models.User)).one()
        assert recorder.calls == [("post_init", models.User, {"instance": user})]
        session.expire_all()
        assert user.name == "ada"  # a refresh, not a load
    assert recorder.names() == ["post_init"]


# -- pre_save / post_save --------------------------------------------------------------------


def test_save_signals_with_created(models: SimpleNamespace, recorder: Recorder) -> None:
    recorder.connect(pre_save, post_save, sender=models.User)
    with Session(models.engine) as session:
        user = models.User(name="ada")
        session.add(user)
        session.commit()
        user.name = "grace"
        session.commit()
    expected = {"instance": user, "raw": False, "using": "primary", "update_fields": None}
    assert recorder.calls == [
        ("pre_save", models.User, expected),
        ("post_save", models.User, {**expected, "created": True}),
        ("pre_save", models.User, expected),
        ("post_save", models.User, {**expected, "created": False}),
    ]


def test_post_save_sees_the_primary_key(models: SimpleNamespace, recorder: Recorder) -> None:
    ids: list[int | None] = []

    @receiver(post_save, sender=models.User, weak=False)
    def remember(sender: Any, instance: Any, **kwargs: Any) -> None:
        ids.append(instance.id)

    try:
        with Session(models.engine) as session:
            session.add(models.User(name="ada"))
            session.commit()
        assert ids == [1]
    finally:
        post_save.disconnect(remember, sender=models.User)


def test_no_save_signals_when_only_a_collection_changed(
    models: SimpleNamespace, recorder: Recorder
) -> None:
    with Session(models.engine) as session:
        article = models.Article(title="a")
        session.add_all([article, models.Tag(name="t")])
        session.commit()
        recorder.connect(pre_save, post_save, m2m_changed)
        article.tags.append(session.scalars(select(models.Tag)).one())
        session.commit()
    assert recorder.names() == ["m2m_changed", "m2m_changed"]


def test_using_is_default_for_an_engine_not_named(engine: Engine, recorder: Recorder) -> None:
    m = declare_models()
    tsa.install(m.Base)
    try:
        m.Base.metadata.create_all(engine)
        recorder.connect(post_save)
        with Session(engine) as session:
            session.add(m.User(name="ada"))
            session.commit()
        assert recorder.of("post_save")[0]["using"] == "default"
    finally:
        tsa.uninstall(m.Base)


# -- pre_delete / post_delete ----------------------------------------------------------------


def test_cascade_deletes_send_delete_signals_for_children(
    models: SimpleNamespace, recorder: Recorder
) -> None:
    with Session(models.engine) as session:
        article = models.Article(comments=[models.Comment(text="1"), models.Comment(text="2")])
        session.add(article)
        session.commit()
        comments = list(article.comments)
        recorder.connect(pre_delete, post_delete)
        session.delete(article)
        session.commit()
    deleted = {(name, kwargs["instance"]) for name, _, kwargs in recorder.calls}
    assert deleted == {
        (name, obj) for name in ("pre_delete", "post_delete") for obj in [article, *comments]
    }
    assert {kwargs["origin"] for _, _, kwargs in recorder.calls} == {article}
    assert {kwargs["using"] for _, _, kwargs in recorder.calls} == {"primary"}
    # each row: pre_delete before its post_delete
    names = [(name, kwargs["instance"]) for name, _, kwargs in recorder.calls]
    for obj in [article, *comments]:
        assert names.index(("pre_delete", obj)) < names.index(("post_delete", obj))


def test_orphan_removed_from_a_collection_is_deleted_with_no_origin(
    models: SimpleNamespace, recorder: Recorder
) -> None:
    with Session(models.engine) as session:
        comment = models.Comment(text="x")
        article = models.Article(comments=[comment])
        session.add(article)
        session.commit()
        recorder.connect(post_delete)
        article.comments.remove(comment)
        session.commit()
    assert recorder.calls == [
        ("post_delete", models.Comment, {"instance": comment, "using": "primary", "origin": None})
    ]


# -- failures abort the flush ------------------------------------------------------------------


def test_a_raising_receiver_aborts_the_flush_and_the_transaction(
    models: SimpleNamespace,
) -> None:
    def refuse(sender: Any, instance: Any, **kwargs: Any) -> None:
        if instance.name == "mallory":
            raise ValueError("no mallory")

    post_save.connect(refuse, sender=models.User, weak=False)
    try:
        with Session(models.engine) as session:
            session.add(models.User(name="ada"))
            session.flush()
            session.add(models.User(name="mallory"))
            with pytest.raises(ValueError, match="no mallory"):
                session.commit()
            session.rollback()
            assert session.scalars(select(models.User.name)).all() == []
    finally:
        post_save.disconnect(refuse, sender=models.User)


# -- bulk and Core statements send nothing ------------------------------------------------------


def test_bulk_and_core_statements_send_no_row_signals(
    models: SimpleNamespace, recorder: Recorder
) -> None:
    recorder.connect(*MODEL_SIGNALS)
    User = models.User
    with Session(models.engine) as session:
        session.execute(insert(User), [{"name": "a"}, {"name": "b"}])
        session.execute(update(User).where(User.name == "a").values(name="c"))
        session.execute(update(User), [{"id": 2, "name": "d"}])
        session.bulk_save_objects([User(name="e")])
        session.execute(delete(User).where(User.name == "c"))
        session.commit()
    with models.engine.begin() as connection:
        connection.execute(User.__table__.insert().values(name="f"))
        connection.execute(User.__table__.delete().where(User.__table__.c.name == "f"))
    # only the constructor of User(name="e") sent anything
    assert recorder.names() == ["pre_init", "post_init"]


# -- after_flush and after_commit ----------------------------------------------------------------


def test_after_flush_receiver_creates_a_profile_committed_with_the_user(
    models: SimpleNamespace,
) -> None:
    @tsa.after_flush
    def create_profile(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        if created:
            Session.object_session(instance).add(models.Profile(user=instance))  # type: ignore[union-attr]

    post_save.connect(create_profile, sender=models.User, weak=False)
    try:
        with Session(models.engine) as session:
            session.add(models.User(name="ada"))
            session.commit()
        with Session(models.engine) as session:
            profile = session.scalars(select(models.Profile)).one()
            assert profile.user.name == "ada"
    finally:
        post_save.disconnect(create_profile, sender=models.User)


def test_after_flush_receiver_runs_at_once_outside_a_flush(models: SimpleNamespace) -> None:
    calls: list[Any] = []

    @tsa.after_flush
    def constructed(sender: Any, instance: Any, **kwargs: Any) -> None:
        calls.append(instance)

    post_init.connect(constructed, sender=models.User, weak=False)
    try:
        user = models.User(name="ada")
        assert calls == [user]
        assert tsa.after_flush(constructed) is constructed
    finally:
        post_init.disconnect(constructed, sender=models.User)


def test_after_commit_receiver_waits_for_the_commit(models: SimpleNamespace) -> None:
    calls: list[str] = []

    @after_commit
    def welcome(sender: Any, instance: Any, **kwargs: Any) -> None:
        calls.append(instance.name)

    post_save.connect(welcome, sender=models.User, weak=False)
    try:
        with Session(models.engine) as session:
            session.add(models.User(name="ada"))
            session.flush()
            assert calls == []
            session.commit()
            assert calls == ["ada"]
            session.add(models.User(name="mallory"))
            session.flush()
            session.rollback()
        assert calls == ["ada"]
    finally:
        post_save.disconnect(welcome, sender=models.User)


# -- class_prepared and lazy senders ----------------------------------------------------------


def test_class_prepared_for_classes_declared_after_install(recorder: Recorder) -> None:
    class Base(DeclarativeBase):
        pass

    recorder.connect(class_prepared)
    tsa.install(Base)
    try:
        classes = declare_classes(Base)
        prepared = [sender for _, sender, _ in recorder.calls]
        assert prepared == [
            classes[name] for name in ("User", "Profile", "Article", "Comment", "Tag")
        ]
    finally:
        tsa.uninstall(Base)


def test_lazy_sender_connected_before_the_class_is_mapped(engine: Engine) -> None:
    calls: list[Any] = []

    def on_save(sender: Any, instance: Any, **kwargs: Any) -> None:
        calls.append(sender)

    post_save.connect(on_save, sender="User", weak=False)
    m = declare_models()  # declared after the receiver, installed before being mapped?
    # classes mapped before install are registered by install() itself
    tsa.install(m.Base)
    try:
        m.Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([m.User(name="ada"), m.Tag()])
            session.commit()
        assert calls == [m.User]
    finally:
        post_save.disconnect(on_save, sender="User")
        tsa.uninstall(m.Base)


def test_lazy_sender_by_dotted_path_after_the_class_is_mapped(models: SimpleNamespace):
    calls: list[Any] = []

    def on_save(sender: Any, **kwargs: Any) -> None:
        calls.append(sender)

    path = f"{models.User.__module__}.{models.User.__qualname__}"
    post_save.connect(on_save, sender=path, weak=False)
    try:
        with Session(models.engine) as session:
            session.add(models.User(name="ada"))
            session.commit()
        assert calls == [models.User]
    finally:
        post_save.disconnect(on_save, sender=path)


def test_ambiguous_lazy_name_is_refused_naming_both_classes(models: SimpleNamespace) -> None:
    class Other(DeclarativeBase):
        pass

    tsa.install(Other)
    try:
        # (a name no other test connects lazily: the registry remembers those)
        class Tag(Other):
            __tablename__ = "other_tag"
            id: Mapped[int] = mapped_column(primary_key=True)

        with pytest.raises(LookupError, match="'Tag' is ambiguous") as error:
            post_save.connect(lambda **kwargs: None, sender="Tag", weak=False)
        assert models.Tag.__qualname__ in str(error.value)
        assert Tag.__qualname__ in str(error.value)
    finally:
        tsa.uninstall(Other)


def test_unresolved_lazy_names_warn_after_configure_and_fail_the_check(
    models: SimpleNamespace,
) -> None:
    def on_save(**kwargs: Any) -> None:
        pass

    post_save.connect(on_save, sender="Usr", weak=False)
    try:
        with pytest.raises(LookupError, match="no mapped class is named 'Usr'"):
            tsa.check_senders()

        class Late(models.Base):
            __tablename__ = "late"
            id: Mapped[int] = mapped_column(primary_key=True)

        try:
            with pytest.warns(tsa.LazySenderWarning, match="'Usr'"):
                Late()  # configures the new mapper
        finally:
            registry.forget(Late)
    finally:
        post_save.disconnect(on_save, sender="Usr")
    tsa.check_senders()


# -- connection_created ---------------------------------------------------------------------------


def test_connection_created_once_per_new_dbapi_connection(engine: Engine) -> None:
    engine.dispose()  # start with an empty pool
    seen: list[dict[str, Any]] = []

    def opened(sender: Any, **kwargs: Any) -> None:
        seen.append({"sender": sender, **kwargs})

    connection_created.connect(opened, weak=False)
    tsa.watch(engine, "primary")
    try:
        with engine.connect() as first:
            with engine.connect() as second:
                second.exec_driver_sql("select 1")
            first.exec_driver_sql("select 1")
        with engine.connect() as again:  # from the pool: not new
            again.exec_driver_sql("select 1")
        opened_count = len(seen)
        assert opened_count == (1 if engine.pool.__class__.__name__ == "StaticPool" else 2)
        assert {entry["sender"] for entry in seen} == {type(engine.dialect)}
        assert {entry["using"] for entry in seen} == {"primary"}
        assert tsa.alias_of(engine) == "primary"
    finally:
        tsa.unwatch(engine)
        connection_created.disconnect(opened)
    engine.dispose()
    with engine.connect() as connection:
        connection.exec_driver_sql("select 1")
    assert len(seen) == opened_count
    assert tsa.alias_of(engine) == "default"
