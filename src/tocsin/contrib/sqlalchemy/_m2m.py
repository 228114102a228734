"""``m2m_changed`` from many-to-many relationships (``relationship(secondary=...)``).

SQLAlchemy writes the secondary table only during a flush, from collection history, and
has no event for those rows. So:

1. Attribute events on each secondary relationship note which side the program changed
   (an event whose initiator is the attribute's own is a change made on that side; the
   mirrored event on the other side carries the first side's initiator). That side gives
   ``instance`` and ``reverse``.
2. ``before_flush`` reads both sides' history and keeps each change once, whichever side
   shows it.
3. ``ConnectionEvents.before_execute``/``after_execute`` on the flush's INSERT or DELETE
   against the secondary table send ``pre_*`` and ``post_*`` around the real write, when
   every object involved has its final primary key.

A clear is known only when an empty collection is assigned (``article.tags = []``) and
nothing is added before the flush: that is reported as ``pre_clear``/``post_clear`` with
``pk_set=None``. SQLAlchemy's ``collection.clear()`` fires the same events as a series of
``remove()`` calls, so it is reported as ``pre_remove``/``post_remove`` with every key.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Delete, Insert, Table, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import InstanceState, Mapper, RelationshipProperty, Session
from sqlalchemy.orm import attributes as orm_attributes
from sqlalchemy.orm.base import PASSIVE_NO_INITIALIZE

from tocsin.signals import m2m_changed

if TYPE_CHECKING:
    from tocsin.contrib.sqlalchemy._models import Installation

# InstanceState.info key: {relationship key: states of the objects this side changed}.
_MADE_HERE = "tocsin.m2m"
# InstanceState.info key: relationship keys an empty collection was assigned to.
_EMPTIED = "tocsin.m2m.emptied"


@dataclass(eq=False)
class Change:
    """One row of a secondary table to be written: which object changed, and how."""

    table: Table
    owner: type  # the class of ``instance``: which installation the change belongs to
    instance: Any  # the object whose collection the program changed
    other: Any  # the object added to it or removed from it
    prop: RelationshipProperty[Any]  # the changed collection
    reverse: bool
    action: str  # "add", "remove" or "clear"
    sent: bool = False


def _reverse_of(prop: RelationshipProperty[Any]) -> RelationshipProperty[Any] | None:
    # back_populates names the other side for both back_populates and backref pairs.
    name = prop.back_populates
    if not name:
        return None
    other = prop.mapper.relationships.get(name)
    return other if isinstance(other, RelationshipProperty) else None


def is_forward(prop: RelationshipProperty[Any]) -> bool:
    """Whether *prop* is the forward side of its pair (``reverse=False`` when changed).

    The side that declared ``backref=`` is forward; for a ``back_populates`` pair, the
    side whose column comes first in the secondary table (``article_tag(article_id,
    tag_id)``: ``Article.tags``); a relationship without a reverse side is forward.
    """
    other = _reverse_of(prop)
    if other is None:
        return True
    if prop.backref is not None or other.backref is not None:
        return prop.backref is not None
    columns: list[Any] = list(prop.secondary.c)  # type: ignore[union-attr]

    def first(side: RelationshipProperty[Any]) -> int:
        return min(columns.index(column) for _, column in side.synchronize_pairs)

    if first(prop) != first(other):
        return first(prop) < first(other)
    return prop.key < other.key


def _primary_key(obj: Any) -> Any:
    values = orm_attributes.instance_state(obj).mapper.primary_key_from_instance(obj)
    return values[0] if len(values) == 1 else tuple(values)


class M2MTracker:
    """The m2m part of one installation: attribute listeners and the flush-time sends."""

    def __init__(self, installation: Installation) -> None:
        self.installation = installation
        # (class attribute, event name, listener) added by configured().
        self.attribute_listeners: list[tuple[Any, str, Callable[..., Any]]] = []
        self.tracked: set[RelationshipProperty[Any]] = set()
        self.props: weakref.WeakKeyDictionary[Mapper[Any], list[RelationshipProperty[Any]]] = (
            weakref.WeakKeyDictionary()
        )
        # Changes sent pre_* for a statement, waiting for its post_*: id(statement) -> ...
        self.in_flight: dict[int, tuple[Session, list[Change]]] = {}

    # -- relationships -------------------------------------------------------------------

    def _secondary_props(self, mapper: Mapper[Any]) -> list[RelationshipProperty[Any]]:
        props = self.props.get(mapper)
        if props is None:
            props = [
                prop
                for prop in mapper.relationships
                if prop.secondary is not None and not prop.viewonly
            ]
            self.props[mapper] = props
        return props

    def configured(self) -> None:
        """Track the side changes are made from, on every secondary relationship mapped so far."""
        for mapper in self.installation._mappers():
            if not mapper.configured:
                continue
            for prop in self._secondary_props(mapper):
                if prop.parent is mapper and prop not in self.tracked:
                    self.tracked.add(prop)
                    self._track(prop)

    def _track(self, prop: RelationshipProperty[Any]) -> None:
        attribute = prop.class_attribute
        impl = attribute.impl

        def changed_here(target: Any, value: Any, initiator: Any, *args: Any) -> None:
            if initiator is not None and initiator.impl is impl and value is not None:
                state = orm_attributes.instance_state(target)
                made = state.info.setdefault(_MADE_HERE, {}).setdefault(prop.key, set())
                made.add(orm_attributes.instance_state(value))

        def replaced(target: Any, values: Any, initiator: Any, *args: Any) -> None:
            if not values and initiator is not None and initiator.impl is impl:
                state = orm_attributes.instance_state(target)
                state.info.setdefault(_EMPTIED, set()).add(prop.key)

        for name, listener in (
            ("append", changed_here),
            ("remove", changed_here),
            ("bulk_replace", replaced),
        ):
            event.listen(attribute, name, listener, propagate=True)
            self.attribute_listeners.append((attribute, name, listener))

    def uninstall(self) -> None:
        """Remove the attribute listeners; returns None."""
        for attribute, name, listener in self.attribute_listeners:
            if event.contains(attribute, name, listener):
                event.remove(attribute, name, listener)
        self.attribute_listeners.clear()
        self.tracked.clear()

    # -- before_flush ----------------------------------------------------------------------

    def changes(self, session: Session) -> list[Change]:
        """The secondary-table changes this flush will write, each once."""
        deleted = {orm_attributes.instance_state(obj) for obj in session.deleted}
        seen: set[tuple[Any, ...]] = set()
        found: list[Change] = []
        for obj in (*session.new, *session.dirty):
            if not self.installation.owns(type(obj)):
                continue
            state = orm_attributes.instance_state(obj)
            if state in deleted:
                continue
            for prop in self._secondary_props(state.mapper):
                history = state.get_history(prop.key, PASSIVE_NO_INITIALIZE)
                for action, others in (("remove", history.deleted), ("add", history.added)):
                    for other in others or ():
                        other_state = orm_attributes.instance_state(other)
                        if other_state in deleted:
                            continue
                        forward = is_forward(prop)
                        pair = (state, other_state) if forward else (other_state, state)
                        key = (prop.secondary, *pair, action)
                        if key in seen:
                            continue
                        seen.add(key)
                        found.append(self._change(prop, state, other_state, action))
        self._find_clears(found)
        for obj in (*session.new, *session.dirty):
            info = orm_attributes.instance_state(obj).info
            info.pop(_MADE_HERE, None)
            info.pop(_EMPTIED, None)
        return found

    def _change(
        self,
        prop: RelationshipProperty[Any],
        state: InstanceState[Any],
        other_state: InstanceState[Any],
        action: str,
    ) -> Change:
        # Which side did the program change? The one whose own attribute event saw it.
        side, instance, other = prop, state, other_state
        reverse_prop = _reverse_of(prop)
        if (
            reverse_prop is not None
            and not self._made_here(state, prop, other_state)
            and (self._made_here(other_state, reverse_prop, state) or not is_forward(prop))
        ):
            side, instance, other = reverse_prop, other_state, state
        return Change(
            table=prop.secondary,  # type: ignore[arg-type]
            owner=instance.class_,
            instance=instance.obj(),
            other=other.obj(),
            prop=side,
            reverse=not is_forward(side),
            action=action,
        )

    @staticmethod
    def _made_here(
        state: InstanceState[Any], prop: RelationshipProperty[Any], other: InstanceState[Any]
    ) -> bool:
        return other in state.info.get(_MADE_HERE, {}).get(prop.key, ())

    @staticmethod
    def _find_clears(changes: list[Change]) -> None:
        for change in changes:
            if change.action != "remove":
                continue
            state = orm_attributes.instance_state(change.instance)
            if change.prop.key not in state.info.get(_EMPTIED, ()):
                continue
            history = state.get_history(change.prop.key, PASSIVE_NO_INITIALIZE)
            if not history.added and not history.unchanged:
                change.action = "clear"

    # -- the flush's statements ----------------------------------------------------------

    def before_execute(
        self,
        connection: Connection,
        statement: Any,
        multiparams: Any,
        params: Any,
        execution_options: Any,
    ) -> None:
        """ConnectionEvents.before_execute: ``pre_*`` before a secondary-table write."""
        from tocsin.contrib.sqlalchemy import _models

        if not isinstance(statement, (Insert, Delete)):
            return
        session = _models.current_flush()
        if session is None:
            return
        actions = ("add",) if isinstance(statement, Insert) else ("remove", "clear")
        batch = [
            change
            for change in _models.flush_state(session).m2m
            if change.table is statement.table
            and change.action in actions
            and not change.sent
            and self.installation.owns(change.owner)
        ]
        if not batch:
            return
        for change in batch:
            change.sent = True
        self.in_flight[id(statement)] = (session, batch)
        self._send(session, connection, batch, "pre")

    def after_execute(
        self,
        connection: Connection,
        statement: Any,
        multiparams: Any,
        params: Any,
        execution_options: Any,
        result: Any,
    ) -> None:
        """ConnectionEvents.after_execute: ``post_*`` once the secondary table is written."""
        waiting = self.in_flight.pop(id(statement), None)
        if waiting is not None:
            session, batch = waiting
            self._send(session, connection, batch, "post")

    def _send(
        self, session: Session, connection: Connection, batch: Iterable[Change], when: str
    ) -> None:
        from tocsin.contrib.sqlalchemy import _models

        groups: dict[tuple[int, str, str], list[Change]] = {}
        for change in batch:
            key = (id(change.instance), change.prop.key, change.action)
            groups.setdefault(key, []).append(change)
        using = self.installation.alias(connection.engine)
        with _models.sending_for(session):
            for changes in groups.values():
                first = changes[0]
                clear = first.action == "clear"
                _models.send(
                    m2m_changed,
                    self._sender(first.table),
                    instance=first.instance,
                    action=f"{when}_{first.action}",
                    reverse=first.reverse,
                    model=first.prop.mapper.class_,
                    pk_set=None if clear else {_primary_key(c.other) for c in changes},
                    using=using,
                )

    def _sender(self, table: Table) -> Any:
        # A secondary table that a class also maps: that class is the "through model".
        for mapper in self.installation._mappers():
            if mapper.local_table is table:
                return mapper.class_
        return table
