"""How a connected receiver is held: weakly, weakly through its instance, or strongly.

The kind of reference is chosen once, at connect time, so that ``send`` never branches on
it: every entry offers ``dereference``, a callable that returns the live receiver or
``None``, and the send loop calls that and nothing else.

An entry also carries what the signal needs to order and remove it: its lookup key, the
bucket of its sender, and its connection sequence number. (Its priority, which most
connections do not set, is kept by the bucket.) Weak entries *are*
their weak reference (a ``weakref.ref`` subclass): one object per receiver keeps the
memory cost of a connection low.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterator
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tocsin._dispatcher import _Bucket

Receiver = Callable[..., Any]
# A receiver's identity: id() for most callables, (id(instance), id(function)) for bound
# methods so that two bound-method objects of the same method are the same receiver, or a
# DispatchUid.
ReceiverKey = Any

# Django's sender key for "any sender".
NONE_ID = id(None)


class DispatchUid:
    """The lookup key of a receiver connected with a ``dispatch_uid``.

    Wrapping the uid keeps it apart from ``id()`` keys: an integer uid can never collide
    with the identity of some other receiver.
    """

    __slots__ = ("uid",)

    def __init__(self, uid: object) -> None:
        self.uid = uid

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DispatchUid) and self.uid == other.uid

    def __hash__(self) -> int:
        return hash((DispatchUid, self.uid))

    def __repr__(self) -> str:
        return f"DispatchUid({self.uid!r})"


def is_bound_method(receiver: object) -> bool:
    """Django's rule: anything with both ``__self__`` and ``__func__`` is a bound method."""
    if type(receiver) is MethodType:
        return True
    if type(receiver) is FunctionType:
        return False
    return hasattr(receiver, "__func__") and hasattr(receiver, "__self__")


def receiver_key(receiver: object, dispatch_uid: object = None) -> ReceiverKey:
    """Return the key that identifies *receiver* (or *dispatch_uid*) within one sender."""
    if dispatch_uid:
        return DispatchUid(dispatch_uid)
    if is_bound_method(receiver):
        return (id(receiver.__self__), id(receiver.__func__))  # type: ignore[attr-defined]
    return id(receiver)


# Django 6.0 added the sender's weak reference to its tuples; before, they read
# ((receiver_key, sender_key), ref, is_async). tocsin.contrib.django sets the width of the
# Django installed, for code written against it.
django_tuple_width = 4


class _EntryShape:
    """Lets an entry be read as Django's ``((key, sender_key), ref, sender_ref, is_async)``.

    Third-party code (factory_boy's ``mute_signals``, debugging snippets) reads
    ``signal.receivers`` expecting that shape.
    """

    __slots__ = ()

    key: ReceiverKey
    bucket: _Bucket
    seq: int
    is_async: bool

    @property
    def priority(self) -> int:
        """Higher runs earlier; kept by the bucket, since most connections have none."""
        priorities = self.bucket.priorities
        return priorities.get(self.key, 0) if priorities else 0

    def _django_tuple(self) -> tuple[Any, ...]:
        bucket = self.bucket
        key = self.key
        # Django's key holds the dispatch_uid itself.
        keys = (key.uid if type(key) is DispatchUid else key, bucket.sender_key)
        if django_tuple_width == 3:
            return (keys, self._reference(), self.is_async)
        return (keys, self._reference(), bucket.sender_ref, self.is_async)

    def _reference(self) -> Any:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Any]:
        return iter(self._django_tuple())

    def __getitem__(self, index: int) -> Any:
        return self._django_tuple()[index]

    def __len__(self) -> int:
        return django_tuple_width


class WeakEntry(weakref.ref, _EntryShape):  # type: ignore[type-arg]
    """A receiver held by a weak reference: a function, a class, a callable object."""

    __slots__ = ("bucket", "key", "seq")
    is_async = False
    weak = True

    @property
    def dereference(self) -> Callable[[], Receiver | None]:
        # Calling a weak reference already returns the receiver or None, at C speed.
        return self

    def _reference(self) -> Any:
        return self


class WeakMethodEntry(WeakEntry):
    """A bound method held through a weak reference to its instance.

    The method object itself is a temporary that dies at once, so it is rebuilt from the
    instance and the function on each call. The function is held strongly: it lives as
    long as its class does.
    """

    __slots__ = ("function",)
    function: Callable[..., Any]

    def __call__(self) -> Receiver | None:
        instance = super().__call__()
        if instance is None:
            return None
        return MethodType(self.function, instance)


class StrongEntry(_EntryShape):
    """A receiver held by a strong reference (``weak=False``)."""

    __slots__ = ("bucket", "key", "receiver", "seq")
    is_async = False
    weak = False

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def __call__(self) -> Receiver:
        return self.receiver

    @property
    def dereference(self) -> Callable[[], Receiver | None]:
        # A constant function implemented in C: the send loop pays no Python frame to
        # "dereference" a strong receiver.
        return itertools.repeat(self.receiver).__next__

    def _reference(self) -> Any:
        return self.receiver


# Whether a receiver is async is decided at connect time and recorded in the entry's
# class, which costs no memory per connection.
class AsyncWeakEntry(WeakEntry):
    __slots__ = ()
    is_async = True


class AsyncWeakMethodEntry(WeakMethodEntry):
    __slots__ = ()
    is_async = True


class AsyncStrongEntry(StrongEntry):
    __slots__ = ()
    is_async = True


Entry = WeakEntry | StrongEntry


def make_entry(
    receiver: Receiver,
    weak: bool,
    is_async: bool,
    on_death: Callable[[Any], None],
    key: ReceiverKey,
    bucket: _Bucket,
    seq: int,
) -> Entry:
    """Create the entry for *receiver*: how it is held is decided here, once.

    Raises ``TypeError`` if *receiver* (or, for a bound method, its instance) cannot be
    weakly referenced and *weak* is true.
    """
    entry: Entry
    if not weak:
        entry = (AsyncStrongEntry if is_async else StrongEntry)(receiver)
    elif is_bound_method(receiver):
        method = (AsyncWeakMethodEntry if is_async else WeakMethodEntry)(
            receiver.__self__,  # type: ignore[attr-defined]
            on_death,
        )
        method.function = receiver.__func__  # type: ignore[attr-defined]
        entry = method
    else:
        # Constructed by weakref.ref's own (C) constructor: connecting stays cheap.
        entry = (AsyncWeakEntry if is_async else WeakEntry)(receiver, on_death)
    entry.key = key
    entry.bucket = bucket
    entry.seq = seq
    return entry
