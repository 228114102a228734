"""m2m_changed from relationship(secondary=...), sent once per change around the real write."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from tests.contrib.test_sqlalchemy_models import Recorder, declare_models, models, recorder
from tocsin.contrib import sqlalchemy as tsa
from tocsin.signals import m2m_changed

__all__ = ["models", "recorder"]  # fixtures


def tagged(models: SimpleNamespace, session: Session, *names: str) -> tuple[Any, list[Any]]:
    article = models.Article(title="a")
    tags = [models.Tag(name=name) for name in names]
    session.add_all([article, *tags])
    session.commit()
    return article, tags


def changes(recorder: Recorder) -> list[tuple[str, Any, bool, Any, Any]]:
    return [
        (k["action"], k["instance"], k["reverse"], k["model"], k["pk_set"])
        for k in recorder.of("m2m_changed")
    ]


def test_add_from_the_forward_side_with_final_primary_keys(
    models: SimpleNamespace, recorder: Recorder
) -> None:
    recorder.connect(m2m_changed, sender=models.article_tag)
    with Session(models.engine) as session:
        article = models.Article(title="new")
        article.tags.extend([models.Tag(name="x"), models.Tag(name="y")])
        session.add(article)
        session.commit()
        ids = {tag.id for tag in article.tags}
    assert None not in ids
    assert changes(recorder) == [
        ("pre_add", article, False, models.Tag, ids),
        ("post_add", article, False, models.Tag, ids),
    ]
    assert {k["using"] for k in recorder.of("m2m_changed")} == {"primary"}


def test_add_from_the_reverse_side(models: SimpleNamespace, recorder: Recorder) -> None:
    with Session(models.engine) as session:
        article, (tag,) = tagged(models, session, "x")
        recorder.connect(m2m_changed)
        tag.articles.append(article)
        session.commit()
        assert article.tags == [tag]
        article_id = article.id
    assert changes(recorder) == [
        ("pre_add", tag, True, models.Article, {article_id}),
        ("post_add", tag, True, models.Article, {article_id}),
    ]


def test_remove_from_both_sides(models: SimpleNamespace, recorder: Recorder) -> None:
    with Session(models.engine) as session:
        article, tags = tagged(models, session, "x", "y", "z")
        article.tags.extend(tags)
        session.commit()
        ids = [tag.id for tag in tags]
        recorder.connect(m2m_changed)
        article.tags.remove(tags[0])
        session.commit()
        tags[1].articles.remove(article)
        session.commit()
        article_id = article.id
    assert changes(recorder) == [
        ("pre_remove", article, False, models.Tag, {ids[0]}),
        ("post_remove", article, False, models.Tag, {ids[0]}),
        ("pre_remove", tags[1], True, models.Article, {article_id}),
        ("post_remove", tags[1], True, models.Article, {article_id}),
    ]


def test_clear_and_assignment(models: SimpleNamespace, recorder: Recorder) -> None:
    with Session(models.engine) as session:
        article, tags = tagged(models, session, "x", "y", "z")
        article.tags = tags[:2]
        session.commit()
        ids = [tag.id for tag in tags]
        recorder.connect(m2m_changed)
        article.tags = [tags[1], tags[2]]  # like Django's set(): remove x, add z
        session.commit()
        article.tags = []  # a clear; collection.clear() reads as removes
        session.commit()
        stored = session.scalars(select(models.article_tag.c.tag_id)).all()
    assert stored == []
    assert changes(recorder) == [
        ("pre_remove", article, False, models.Tag, {ids[0]}),
        ("post_remove", article, False, models.Tag, {ids[0]}),
        ("pre_add", article, False, models.Tag, {ids[2]}),
        ("post_add", article, False, models.Tag, {ids[2]}),
        ("pre_clear", article, False, models.Tag, None),
        ("post_clear", article, False, models.Tag, None),
    ]


def test_pre_add_runs_before_the_row_is_written_and_post_add_after(
    models: SimpleNamespace,
) -> None:
    seen: list[tuple[str, int]] = []

    def count_rows(sender: Any, action: str, **kwargs: Any) -> None:
        session = Session.object_session(kwargs["instance"])
        assert session is not None
        connection = session.connection()
        rows = connection.execute(select(models.article_tag)).all()
        seen.append((action, len(rows)))

    m2m_changed.connect(count_rows, weak=False)
    try:
        with Session(models.engine) as session:
            article, tags = tagged(models, session, "x")
            article.tags.append(tags[0])
            session.commit()
        assert seen == [("pre_add", 0), ("post_add", 1)]
    finally:
        m2m_changed.disconnect(count_rows)


def test_an_add_undone_before_the_flush_sends_nothing(
    models: SimpleNamespace, recorder: Recorder
) -> None:
    with Session(models.engine) as session:
        article, (tag,) = tagged(models, session, "x")
        recorder.connect(m2m_changed)
        article.tags.append(tag)
        article.tags.remove(tag)
        session.commit()
    assert recorder.calls == []


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["add", "remove", "flush"]), st.integers(0, 3), st.booleans()),
    max_size=20,
)


@settings(max_examples=30, deadline=None)
@given(OPERATIONS)
def test_signals_replayed_on_a_set_give_the_stored_rows(operations: list[Any]) -> None:
    """Random add/remove from either side: the signals describe exactly what was stored."""
    engine = create_engine("sqlite://", poolclass=StaticPool)
    m = declare_models()
    tsa.install(m.Base)
    replayed: set[tuple[int, int]] = set()

    def replay(sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kw: Any):
        if not action.startswith("post_"):
            return
        if action == "post_clear":
            side = 1 if reverse else 0
            replayed.difference_update({pair for pair in replayed if pair[side] == instance.id})
            return
        pairs = {(pk, instance.id) if reverse else (instance.id, pk) for pk in pk_set}
        if action == "post_add":
            assert not pairs & replayed, "add reported a row already there"
            replayed.update(pairs)
        else:
            assert pairs <= replayed, "remove reported a row that was not there"
            replayed.difference_update(pairs)

    m2m_changed.connect(replay, weak=False)
    try:
        m.Base.metadata.create_all(engine)
        with Session(engine) as session:
            articles = [m.Article(title=str(i)) for i in range(2)]
            tags = [m.Tag(name=str(i)) for i in range(2)]
            session.add_all([*articles, *tags])
            session.commit()
            for op, index, from_tag in operations:
                article, tag = articles[index % 2], tags[index // 2]
                if op == "flush":
                    session.flush()
                    continue
                owner, member = (tag.articles, article) if from_tag else (article.tags, tag)
                if op == "add" and member not in owner:
                    owner.append(member)
                elif op == "remove" and member in owner:
                    owner.remove(member)
            session.commit()
            rows = session.execute(select(m.article_tag)).all()
        assert replayed == {(row.article_id, row.tag_id) for row in rows}
    finally:
        m2m_changed.disconnect(replay)
        tsa.uninstall(m.Base)
        engine.dispose()
