"""``Signal`` and ``receiver``: Django's dispatcher, standalone.

How it is laid out, and why:

- Receivers live in *buckets*, one per sender (matched by identity) plus one for "any
  sender", each a dict from receiver key to entry in connection order. Connecting and
  disconnecting are O(1) dict operations.
- ``send`` looks up ``id(sender)`` in a cache of *resolved* receivers: a pair of tuples
  (sync, async) of dereferencing callables, already merged and ordered. A miss (the
  cache's ``__missing__``: the one place that looks receivers up) resolves the sender's
  bucket and the any-sender bucket. A change to a bucket invalidates exactly the cache
  entries that depend on it.
- Interception is a private decision, never a replaced method: ``_intercept`` is None
  while the signal is plain (not strict, no mute rule naming it, no hook on it, no
  global hook), and otherwise says why it is not. Each public send method tests it first
  (before any short cut: ``capture()`` records sends that nobody receives) and takes the
  slow path if it is set, so a subclass that overrides ``send`` keeps its override in
  every mode. ``_intercept`` is recomputed under the private lock whenever strictness,
  mute rules or hooks change.

Locks, and why there are two:

- ``lock`` is Django's public lock. ``connect`` and ``disconnect`` take it, and nothing
  else does, so code written for Django that holds it (``with signal.lock: saved =
  signal.receivers[:]; signal.receivers = []``, later restoring them and clearing
  ``sender_receivers_cache``) keeps connects and disconnects out while it works. Reading
  or assigning ``receivers``, clearing the cache, sending, resolving and muting never
  take it, so all of them work inside and outside ``with signal.lock``.
- ``_mutex`` is private: it guards the buckets, the cache's refills and the queue of
  deaths, for a few dict operations at a time. It is taken after ``lock`` (never the
  other way round) and never held while a receiver or any other user code runs.
- Garbage collection removes what it kills at once: the weak-reference callbacks of a
  dead receiver or sender delete its entries and invalidate the cache, without ever
  waiting for a lock. They only *try* ``_mutex``: they may run inside the collector while
  this very thread holds it, in the middle of a change; then the work is queued for the
  next holder. (A re-entrant lock would let them in, into that half-done change.)
- At interpreter exit the callbacks run while modules are torn down: they read no module
  globals and log nothing then.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from tocsin import _async, _hooks, _registry
from tocsin._checks import (
    MethodReceiverWarning,
    WeakReceiverWarning,
    argument_names,
    check_receiver,
    warn_weak_lambda,
)
from tocsin._hooks import Observer
from tocsin._refs import (
    NONE_ID,
    DispatchUid,
    Entry,
    Receiver,
    ReceiverKey,
    StrongEntry,
    WeakEntry,
    WeakMethodEntry,
    make_entry,
    receiver_key,
)

__all__ = ["NO_RECEIVERS", "MethodReceiverWarning", "Signal", "WeakReceiverWarning", "receiver"]

logger = logging.getLogger("tocsin.dispatch")

Dereference = Callable[[], Receiver | None]
Resolved = tuple[tuple[Dereference, ...], tuple[Dereference, ...]]
Responses = list[tuple[Receiver, Any]]

# The resolved form of "nobody is listening": send() returns [] on seeing it.
NO_RECEIVERS: Resolved = ((), ())

# The cache of resolved receivers also holds senders that have no receivers of their own
# (they share the any-sender list). Past this many entries it is emptied, so that a
# program sending from millions of short-lived objects does not grow it without bound.
_CACHE_SIZE = 4096

_F = TypeVar("_F", bound=Callable[..., Any])
_S = TypeVar("_S")
_D = TypeVar("_D")
_S_contra = TypeVar("_S_contra", contravariant=True)
_D_co = TypeVar("_D_co", covariant=True)

# mypy reads ``if not MYPY:`` as false (it gives MYPY the meaning of TYPE_CHECKING);
# pyright has no such rule and reads it; Python runs it. It keeps from mypy what only
# pyright can check (see tocsin._typed).
MYPY = False


class _Decorator(Protocol):
    """What ``receiver(signal)`` returns for an untyped signal: the function, unchanged."""

    def __call__(self, function: _F, /) -> _F: ...


class _Receivable(Protocol[_S_contra, _D_co]):
    """A signal, as ``receiver()`` sees it: the senders it takes, and the decorator it
    makes (typed signals check the receiver's signature; see ``tocsin._typed``)."""

    def _receiver_decorator(self, sender: _S_contra, /) -> _D_co: ...


_NOT_GIVEN: Any = object()


@dataclasses.dataclass(frozen=True)
class Connection:
    """One live registration of a receiver on a signal (see ``Signal.connections()``).

    sender: the sender it is filtered on, or None for any sender. weak: held weakly.
    dispatch_uid: the uid it was connected with, if any. priority: higher runs earlier.
    is_async: an async receiver. after_commit: decorated with ``@after_commit``.
    """

    receiver: Receiver
    sender: Any
    weak: bool
    dispatch_uid: Any
    priority: int
    is_async: bool
    after_commit: bool


class _SenderRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to a sender that knows which bucket it belongs to."""

    __slots__ = ("key",)

    def __init__(self, sender: object, callback: Callable[[Any], None], key: int) -> None:
        self.key = key

    def __new__(cls, sender: object, callback: Callable[[Any], None], key: int) -> _SenderRef:
        return super().__new__(cls, sender, callback)


class _Bucket(dict[ReceiverKey, Entry]):
    """The receivers connected for one sender (or for any sender), in connection order.

    A sender that can be weakly referenced is held weakly, as in Django: when it dies the
    bucket goes, so its id can be reused safely. One that cannot (an int, a str, a plain
    ``object()``) is held strongly for as long as it has receivers, for the same reason.
    """

    __slots__ = ("owner", "priorities", "sender", "sender_key", "sender_ref")

    def __init__(self, owner: Signal, sender: object) -> None:
        super().__init__()
        self.owner = owner
        self.sender_key = NONE_ID if sender is None else id(sender)
        self.sender_ref: _SenderRef | None = None
        self.sender: object = None
        # Receiver key -> priority, for the few connections that set one.
        self.priorities: dict[ReceiverKey, int] | None = None
        if sender is not None:
            try:
                self.sender_ref = _SenderRef(sender, owner._on_sender_death, self.sender_key)
            except TypeError:
                self.sender = sender

    def alive(self) -> bool:
        """Whether the sender is still alive (always true for the any-sender bucket)."""
        if self.sender_ref is not None:
            return self.sender_ref() is not None
        return True

    def set_priority(self, key: ReceiverKey, priority: int) -> None:
        if priority:
            if self.priorities is None:
                self.priorities = {}
            self.priorities[key] = priority
        elif self.priorities:
            self.priorities.pop(key, None)

    def holds(self, sender: object) -> bool:
        """Whether this bucket is the one of *sender* (and not of a dead sender with its id)."""
        if self.sender_ref is not None:
            return self.sender_ref() is sender
        return self.sender is sender


class _Cache(dict[int, Resolved]):
    """``id(sender)`` -> its resolved receivers; a miss resolves them (and caches them).

    Every lookup is ``signal._cache[id(sender)]``: one subscript at C speed on a hit,
    and the one helper that resolves on a miss.
    """

    __slots__ = ("signal",)

    def __init__(self, signal: Signal) -> None:
        super().__init__()
        self.signal = signal

    def __missing__(self, key: int) -> Resolved:
        return self.signal._resolve_key(key)


# The reasons a signal leaves the fast path; Signal._intercept is None or one of these.
_STRICT = frozenset({"strict"})
_WATCHED = frozenset({"watched"})
_STRICT_WATCHED = _STRICT | _WATCHED


def _dispatch_order(entry: Entry) -> tuple[int, int]:
    return (-entry.priority, entry.seq)


def _connection_order(entry: Entry) -> int:
    return entry.seq


class Signal:
    """A signal that receivers connect to and that senders send.

    Receivers are called as ``receiver(signal=signal, sender=sender, **named)`` and must
    accept ``**kwargs``. They are held weakly unless connected with ``weak=False``.
    """

    def __init__(
        self,
        use_caching: bool | Iterable[str] = False,
        *,
        providing_args: Iterable[str] | None = None,
        strict: bool = False,
        name: str | None = None,
        doc: str | None = None,
    ) -> None:
        """Create a signal.

        ``use_caching`` is accepted for Django compatibility; tocsin always caches, and
        its cache is always correct. ``providing_args`` documents (and, with
        ``strict=True``, enforces) the keyword arguments sent. Code written for the old
        ``Signal(providing_args)`` signature may pass that list first, positionally.
        """
        if isinstance(use_caching, str):
            raise TypeError(
                f"Signal() takes use_caching (a bool) or a list of argument names first, "
                f"not the string {use_caching!r}"
            )
        if isinstance(use_caching, (list, tuple, set, frozenset)):
            if providing_args is not None:
                raise TypeError("Signal() got providing_args both positionally and by keyword")
            providing_args, use_caching = use_caching, False
        self.use_caching = bool(use_caching)
        self.providing_args = argument_names(providing_args)
        self.name = name
        self.doc = doc
        if doc is not None:
            self.__doc__ = doc  # what help(signal) shows
        # Django's lock, held by connect and disconnect (and by Django code that swaps
        # receivers); _mutex guards the data (see the module's docstring).
        self.lock = threading.Lock()
        self._mutex = threading.Lock()

        self._buckets: dict[int, _Bucket] = {}
        self._cache = _Cache(self)
        self._seq = itertools.count()
        self._priorities_used = False
        # Work that garbage collection could not do because the lock was held.
        self._dead: list[Entry | _SenderRef] = []
        # One bound method shared by every weak reference, rather than one each.
        self._on_receiver_death = self._receiver_died
        self._on_sender_death = self._sender_died

        # Mute rules naming this signal, and hooks told of its sends (see _hooks); why
        # sends leave the fast path (None: they do not). Registered before it is
        # computed, so a global hook added meanwhile cannot be missed.
        self._mute_rules = 0
        self._hooks: tuple[_hooks.Hook, ...] = ()
        self._strict = False
        self._intercept: frozenset[str] | None = None
        _registry.register(self, _creating_module())
        self.strict = strict

    @property
    def strict(self) -> bool:
        """Whether each send checks its keyword arguments against ``providing_args``."""
        return self._strict

    @strict.setter
    def strict(self, strict: bool) -> None:
        if strict and self.providing_args is None:
            raise TypeError(
                "Signal(strict=True) needs providing_args: the keyword arguments to check"
            )
        with self._mutex:
            self._strict = bool(strict)
            self._update_intercept()

    def __repr__(self) -> str:
        parts = [type(self).__name__]
        if self.name:
            parts.append(repr(self.name))
        if self.providing_args is not None:
            parts.append(f"providing_args={sorted(self.providing_args)!r}")
        if self.strict:
            parts.append("strict=True")
        return f"<{' '.join(parts)} at {id(self):#x}>"

    # -- connecting ------------------------------------------------------------------

    def connect(
        self,
        receiver: _F,
        sender: object = None,
        weak: bool = True,
        dispatch_uid: object = None,
        *,
        priority: int = 0,
    ) -> _F:
        """Connect *receiver* to this signal, for *sender* only or (``None``) any sender.

        A receiver already connected under the same key (the receiver, or the
        ``dispatch_uid`` if given, together with the sender) stays as it is: the first
        registration wins. Higher ``priority`` runs earlier; equal priorities run in
        connection order. Returns *receiver*, so ``connect`` also works as a decorator.
        """
        is_async = check_receiver(receiver, self)
        if type(priority) is not int:
            raise TypeError(f"priority must be an int, not {type(priority).__name__}")
        if weak and getattr(receiver, "__name__", None) == "<lambda>":
            warn_weak_lambda(self, receiver)
        key = receiver_key(receiver, dispatch_uid)

        with self.lock, self._mutex:
            self._collect_dead()
            bucket = self._bucket_of(sender)
            existing = bucket.get(key)
            if existing is not None and existing() is not None:
                return receiver
            try:
                entry = make_entry(
                    receiver, weak, is_async, self._on_receiver_death, key, bucket, next(self._seq)
                )
            except TypeError as error:
                raise TypeError(
                    f"{error}: connect {receiver!r} with weak=False to hold it strongly"
                ) from None
            if existing is not None:
                del bucket[key]
            bucket[key] = entry
            bucket.set_priority(key, priority)
            self._buckets[bucket.sender_key] = bucket
            self._priorities_used = self._priorities_used or priority != 0
            self._invalidate(bucket)
        return receiver

    def disconnect(
        self,
        receiver: Receiver | None = None,
        sender: object = None,
        dispatch_uid: object = None,
        weak: object = None,
    ) -> bool:
        """Disconnect the receiver connected with this *sender* (and *dispatch_uid*).

        The sender (and the uid, when one was used) must be the ones given to
        ``connect``. ``weak`` is accepted and ignored, for code written for old Django.
        Returns whether a receiver was disconnected.
        """
        key = receiver_key(receiver, dispatch_uid)
        sender_key = NONE_ID if sender is None else id(sender)
        with self.lock, self._mutex:
            self._collect_dead()
            bucket = self._buckets.get(sender_key)
            if bucket is None or (sender is not None and not bucket.holds(sender)):
                return False
            if bucket.pop(key, None) is None:
                return False
            bucket.set_priority(key, 0)
            if not bucket:
                del self._buckets[sender_key]
            self._invalidate(bucket)
        return True

    def has_listeners(self, sender: object = None) -> bool:
        """Whether ``send(sender)`` would call any receiver right now.

        As in Django, ``has_listeners()`` with no sender asks about receivers connected
        for *any* sender, not about receivers connected at all. A hook attached to this
        signal (``tocsin.testing.capture(signal)``) counts as a listener: code that skips
        a send nobody would receive (the integrations, Django's fast deletes) still sends
        while the signal is captured. Global hooks do not count.
        """
        if self._hooks:
            return True
        sync, async_ = self._cache[id(sender)]
        return any(ref() is not None for ref in sync) or any(ref() is not None for ref in async_)

    def has_async_listeners(self, sender: object = None) -> bool:
        """Whether ``send(sender)`` would call any async receiver right now.

        Code that sends from a thread running an event loop can use it to choose between
        ``send`` and ``await asend``.
        """
        _, async_ = self._cache[id(sender)]
        return any(ref() is not None for ref in async_)

    def muted(
        self,
        sender: object = _NOT_GIVEN,
        *,
        receivers: Iterable[Receiver] | None = None,
        globally: bool = False,
    ) -> _hooks.Muting:
        """Mute this signal while the returned context manager (or decorator) is active.

        Only for *sender* if given (by identity), only *receivers* if given; in the
        current thread or asyncio task unless ``globally``. Sends made meanwhile return
        ``[]`` (or the other receivers' responses); nothing is disconnected.
        """
        return _hooks.Muting(
            [self],
            sender=None if sender is _NOT_GIVEN else sender,
            for_sender=sender is not _NOT_GIVEN,
            receivers=None if receivers is None else list(receivers),
            globally=globally,
        )

    def connections(self) -> list[Connection]:
        """What is connected now, in dispatch order for "any sender": one record per
        live registration, with its receiver, sender filter and options."""
        entries = sorted(self.receivers, key=_dispatch_order)
        connections = []
        for entry in entries:
            receiver = entry()
            bucket = entry.bucket
            if receiver is None or not bucket.alive():
                continue
            if bucket.sender_key == NONE_ID:
                sender = None
            elif bucket.sender_ref is not None:
                sender = bucket.sender_ref()
            else:
                sender = bucket.sender
            key = entry.key
            connections.append(
                Connection(
                    receiver=receiver,
                    sender=sender,
                    weak=entry.weak,
                    dispatch_uid=key.uid if isinstance(key, DispatchUid) else None,
                    priority=entry.priority,
                    is_async=entry.is_async,
                    after_commit=bool(getattr(receiver, "_tocsin_after_commit", False)),
                )
            )
        return connections

    # -- sending ---------------------------------------------------------------------

    def send(self, sender: Any, **named: Any) -> Responses:
        """Call every receiver for *sender* with ``signal``, ``sender`` and *named*.

        Sync receivers are called one at a time, in order; an exception propagates at
        once. Async receivers then run concurrently on a private event loop; from a
        thread that is running a loop, use ``await asend(...)`` instead.
        Returns ``[(receiver, response), ...]``.
        """
        if self._intercept is not None:  # strict, muted, captured or hooked
            return self._send_intercepted("send", sender, named)
        if not self._buckets:
            return []
        receivers = self._cache[id(sender)]
        if receivers is NO_RECEIVERS:
            return []
        sync, async_ = receivers
        if len(sync) == 1 and not async_:
            # The most common case (one receiver for a sender) deserves the shortest path.
            receiver = sync[0]()
            if receiver is None:
                return []
            return [(receiver, receiver(signal=self, sender=sender, **named))]
        # As _receiver_kwargs(), written out: this is the hot path.
        if "signal" in named:
            raise TypeError("send() got multiple values for keyword argument 'signal'")
        named["signal"] = self
        named["sender"] = sender
        if async_:
            return self._send_with_async(sync, async_, named, robust=False)
        responses = []
        for ref in sync:
            receiver = ref()
            if receiver is not None:
                responses.append((receiver, receiver(**named)))
        return responses

    def send_robust(self, sender: Any, **named: Any) -> Responses:
        """Like ``send``, but a receiver's ``Exception`` is logged and returned, not raised.

        Returns ``[(receiver, response_or_exception), ...]``; each failure is logged at
        ERROR on the ``tocsin.dispatch`` logger with its traceback.
        """
        if self._intercept is not None:
            return self._send_intercepted("send_robust", sender, named)
        if not self._buckets:
            return []
        receivers = self._cache[id(sender)]
        if receivers is NO_RECEIVERS:
            return []
        sync, async_ = receivers
        kwargs = self._receiver_kwargs("send_robust", sender, named)
        if async_:
            return self._send_with_async(sync, async_, kwargs, robust=True)
        return _call_robust(sync, kwargs)

    async def asend(self, sender: Any, **named: Any) -> Responses:
        """Send from async code: sync receivers first (in a worker thread, as one group),
        then async receivers concurrently. Returns ``[(receiver, response), ...]``,
        sync receivers first, each group in registration order.
        """
        if self._intercept is not None:
            return await self._asend_intercepted("asend", sender, named)
        if not self._buckets:
            return []
        receivers = self._cache[id(sender)]
        if receivers is NO_RECEIVERS:
            return []
        kwargs = self._receiver_kwargs("asend", sender, named)
        return await _dispatch_async(*receivers, kwargs, robust=False)

    async def asend_robust(self, sender: Any, **named: Any) -> Responses:
        """``asend`` that logs and returns each receiver's ``Exception`` instead of raising."""
        if self._intercept is not None:
            return await self._asend_intercepted("asend_robust", sender, named)
        if not self._buckets:
            return []
        receivers = self._cache[id(sender)]
        if receivers is NO_RECEIVERS:
            return []
        kwargs = self._receiver_kwargs("asend_robust", sender, named)
        return await _dispatch_async(*receivers, kwargs, robust=True)

    # -- the parts of dispatch that are not the hot path --------------------------------

    def _receiver_kwargs(self, method: str, sender: Any, named: dict[str, Any]) -> dict[str, Any]:
        """What every receiver is called with: *named* plus ``signal`` and ``sender``.

        The dict is built once per send, not once per receiver; each receiver still gets
        a fresh ``**kwargs`` dict of its own from the call.
        """
        if "signal" in named:
            raise TypeError(f"{method}() got multiple values for keyword argument 'signal'")
        named["signal"] = self
        named["sender"] = sender
        return named

    def _send_with_async(
        self,
        sync: tuple[Dereference, ...],
        async_: tuple[Dereference, ...],
        kwargs: dict[str, Any],
        robust: bool,
        observer: Observer | None = None,
    ) -> Responses:
        async_receivers = _live(async_)
        if async_receivers and _async.loop_is_running():
            method = "asend_robust" if robust else "asend"
            raise RuntimeError(
                f"{self!r} has async receivers and {method[1:]}() was called from a thread "
                "that is running an event loop, which it must not block. "
                f"Use 'await signal.{method}(...)' instead."
            )
        responses = (_call_robust if robust else _call)(sync, kwargs, observer)
        if async_receivers:
            responses += _async.run_blocking(
                lambda context: _call_async(async_receivers, kwargs, context, robust, observer)
            )
        return responses

    # -- the slow path: strict checking and interception --------------------------------
    # Reached from the class's own send methods when _intercept is set; everything here
    # is decided again from the current state, which may have changed since.

    def _send_intercepted(self, method: str, sender: Any, named: dict[str, Any]) -> Responses:
        """send/send_robust while strict, muted, captured or hooked."""
        robust = method == "send_robust"
        record, hooks, skipped = self._begin(method, sender, named)
        if record is None:
            return self._deliver(self._prepared(method, sender, named), robust)
        try:
            if not record.muted:
                receivers = self._prepared(method, sender, named, skipped)
                record.responses = self._deliver(receivers, robust, _observer(record))
            else:
                record.responses = []
            return record.responses
        except BaseException as error:
            record.error = error
            raise
        finally:
            self._end(record, hooks)

    async def _asend_intercepted(
        self, method: str, sender: Any, named: dict[str, Any]
    ) -> Responses:
        """asend/asend_robust while strict, muted, captured or hooked."""
        robust = method == "asend_robust"
        record, hooks, skipped = self._begin(method, sender, named)
        if record is None:
            return await _dispatch_async(*self._prepared(method, sender, named), robust=robust)
        try:
            if not record.muted:
                receivers = self._prepared(method, sender, named, skipped)
                record.responses = await _dispatch_async(*receivers, robust, _observer(record))
            else:
                record.responses = []
            return record.responses
        except BaseException as error:
            record.error = error
            raise
        finally:
            self._end(record, hooks)

    def _begin(
        self, method: str, sender: Any, named: dict[str, Any]
    ) -> tuple[_hooks.SendRecord | None, tuple[_hooks.Hook, ...], frozenset[Any] | None]:
        """Check a strict send, then tell the hooks it starts. Returns its record (None
        when nothing watches the send), the hooks, and the receiver keys muted."""
        if self._strict:
            self._check_send(method, sender, named)
        hooks = (*self._hooks, *_hooks.global_hooks())
        decision = _hooks.mute_decision(self, sender) if self._mute_rules else None
        if not hooks and decision is None:
            return None, hooks, None
        record = _hooks.SendRecord(self, sender, dict(named), method, decision is _hooks.MUTED)
        for hook in hooks:
            hook.send_started(record)
        skipped = frozenset(decision) if isinstance(decision, (set, frozenset)) else None
        return record, hooks, skipped

    def _end(self, record: _hooks.SendRecord, hooks: tuple[_hooks.Hook, ...]) -> None:
        record.duration = time.perf_counter() - record.started
        for hook in hooks:
            hook.send_finished(record)

    def _prepared(
        self, method: str, sender: Any, named: dict[str, Any], skipped: Any = None
    ) -> tuple[tuple[Dereference, ...], tuple[Dereference, ...], dict[str, Any]]:
        """The receivers for *sender* less the *skipped* ones, and their keyword arguments."""
        sync, async_ = self._cache[id(sender)]
        kwargs = self._receiver_kwargs(method, sender, named)
        if skipped:
            sync, async_ = _without(sync, skipped), _without(async_, skipped)
        return sync, async_, kwargs

    def _deliver(
        self,
        receivers: tuple[tuple[Dereference, ...], tuple[Dereference, ...], dict[str, Any]],
        robust: bool,
        observer: Observer | None = None,
    ) -> Responses:
        sync, async_, kwargs = receivers
        if async_:
            return self._send_with_async(sync, async_, kwargs, robust, observer)
        return (_call_robust if robust else _call)(sync, kwargs, observer)

    def _check_send(self, method: str, sender: Any, named: dict[str, Any]) -> None:
        """A strict signal's check of one send; raises TypeError naming what is wrong."""
        self._check_arguments(method, named)

    def _check_arguments(self, method: str, named: dict[str, Any]) -> None:
        expected = self.providing_args or frozenset()
        missing = sorted(expected - named.keys())
        unexpected = sorted(named.keys() - expected)
        if missing or unexpected:
            problems = []
            if missing:
                problems.append(f"missing keyword argument(s) {', '.join(map(repr, missing))}")
            if unexpected:
                problems.append(
                    f"unexpected keyword argument(s) {', '.join(map(repr, unexpected))}"
                )
            raise TypeError(f"{self!r}.{method}(): {'; '.join(problems)}")

    def _update_intercept(self) -> None:
        """Decide whether sends leave the fast path, and why (``_mutex`` held, so that
        concurrent changes cannot leave a stale decision behind)."""
        watched = bool(self._mute_rules or self._hooks or _hooks.global_hooks())
        if self._strict:
            self._intercept = _STRICT_WATCHED if watched else _STRICT
        else:
            self._intercept = _WATCHED if watched else None

    def _refresh_intercept(self) -> None:
        """Recompute ``_intercept`` after a global hook came or went."""
        with self._mutex:
            self._update_intercept()

    def _count_mute_rule(self, change: int) -> None:
        """A mute rule naming this signal starts (+1) or stops (-1)."""
        with self._mutex:
            self._mute_rules += change
            self._update_intercept()

    def _add_hook(self, hook: _hooks.Hook) -> None:
        with self._mutex:
            if not any(existing is hook for existing in self._hooks):
                self._hooks = (*self._hooks, hook)
            self._update_intercept()

    def _remove_hook(self, hook: _hooks.Hook) -> None:
        with self._mutex:
            self._hooks = tuple(existing for existing in self._hooks if existing is not hook)
            self._update_intercept()

    # -- resolving and caching ----------------------------------------------------------

    def _resolve(self, sender: object) -> Resolved:
        """The ordered sync and async receivers for *sender* (from the cache, resolved
        on a miss): what ``self._cache[id(sender)]`` gives, for callers that hold the
        sender rather than its id."""
        return self._cache[id(sender)]

    def _resolve_key(self, key: int) -> Resolved:
        """Compute and cache the receivers for the sender whose ``id()`` is *key*.

        The caller holds that sender, so a live bucket under its id is its own; a bucket
        whose sender has died (its callback still to come) is another object's, skipped.
        """
        with self._mutex:
            self._collect_dead()
            anyone = self._buckets.get(NONE_ID)
            entries: list[Entry] = list(anyone.values()) if anyone else []
            own = None if key == NONE_ID else self._buckets.get(key)
            if own is not None and own.alive():
                entries += own.values()
                entries.sort(key=_dispatch_order)
            elif self._priorities_used:
                entries.sort(key=_dispatch_order)
            # A receiver that has just died may still be listed (its callback has yet to
            # run): send() skips it, and the callback will invalidate this result.
            if entries:
                resolved: Resolved = (
                    tuple([entry.dereference for entry in entries if not entry.is_async]),
                    tuple([entry.dereference for entry in entries if entry.is_async]),
                )
            else:
                resolved = NO_RECEIVERS
            if len(self._cache) >= max(_CACHE_SIZE, 2 * len(self._buckets)):
                self._cache.clear()
            self._cache[key] = resolved
        return resolved

    def _bucket_of(self, sender: object) -> _Bucket:
        """The bucket for *sender*, new (and not yet registered) if it has none."""
        bucket = self._buckets.get(NONE_ID if sender is None else id(sender))
        if bucket is not None and (sender is None or bucket.holds(sender)):
            return bucket
        return _Bucket(self, sender)

    def _invalidate(self, bucket: _Bucket) -> None:
        if bucket.sender_key == NONE_ID:
            self._cache.clear()
        else:
            self._cache.pop(bucket.sender_key, None)

    def _receiver_died(
        self,
        entry: Entry,
        # Bound now: at interpreter exit this runs while module globals are torn down.
        _none_id: int = NONE_ID,
        _finalizing: Callable[[], bool] = sys.is_finalizing,
        _logger: logging.Logger = logger,
        _debug: int = logging.DEBUG,
    ) -> None:
        # A weak-reference callback: it may run inside the garbage collector while this
        # very thread holds the mutex, so it must never wait for it. It runs once per
        # dead receiver, so it is written for speed (see benchmark case 8).
        bucket = entry.bucket
        if self._mutex.acquire(False):
            try:
                if bucket.get(entry.key) is entry:
                    del bucket[entry.key]
                    if bucket.priorities:
                        bucket.priorities.pop(entry.key, None)
                    if not bucket and self._buckets.get(bucket.sender_key) is bucket:
                        del self._buckets[bucket.sender_key]
            finally:
                self._mutex.release()
        else:
            self._dead.append(entry)
        if bucket.sender_key == _none_id:
            self._cache.clear()
        else:
            self._cache.pop(bucket.sender_key, None)
        if not _finalizing() and _logger.isEnabledFor(_debug):
            _logger.debug(
                "A weakly referenced receiver of %r was garbage collected and disconnected "
                "(key %r)",
                self,
                entry.key,
            )

    def _sender_died(self, ref: _SenderRef) -> None:
        # As above: a weak-reference callback never waits for the mutex.
        if self._mutex.acquire(False):
            try:
                self._forget_sender(ref)
            finally:
                self._mutex.release()
        else:
            self._dead.append(ref)
        self._cache.pop(ref.key, None)

    def _forget_receiver(self, entry: Entry) -> None:
        bucket = entry.bucket
        if bucket.get(entry.key) is entry:
            del bucket[entry.key]
            if bucket.priorities:
                bucket.priorities.pop(entry.key, None)
            if not bucket and self._buckets.get(bucket.sender_key) is bucket:
                del self._buckets[bucket.sender_key]

    def _forget_sender(self, ref: _SenderRef) -> None:
        bucket = self._buckets.get(ref.key)
        if bucket is not None and bucket.sender_ref is ref:
            del self._buckets[ref.key]
            # Entries refer back to their bucket: empty it so that strongly held
            # receivers are released now, not at the next cyclic collection.
            bucket.clear()

    def _collect_dead(self) -> None:
        """Finish what garbage collection queued while the mutex was held (mutex held)."""
        while self._dead:
            dead = self._dead.pop()
            if isinstance(dead, _SenderRef):
                self._forget_sender(dead)
            else:
                self._forget_receiver(dead)

    if TYPE_CHECKING:
        # For receiver()'s static type only: typed signals narrow it (see tocsin._typed).
        def _receiver_decorator(self, sender: object, /) -> _Decorator: ...

    # -- compatibility with code that reads Django's internals ----------------------------

    @property
    def receivers(self) -> list[Entry]:
        """The connected receivers, in connection order.

        Each entry reads like Django's tuple ``((receiver_key, sender_key), ref,
        sender_ref, is_async)``: ``entry[1]`` is the weak reference (call it for the
        receiver) or, for ``weak=False``, the receiver itself. Assigning a list of entries
        read from this property (``signal.receivers = saved``, ``+=``) reconnects exactly
        those, in that order; ``signal.receivers = []`` disconnects everything. Neither
        takes ``lock``: both work inside ``with signal.lock``, as in Django.
        """
        with self._mutex:
            self._collect_dead()
            entries = [entry for bucket in self._buckets.values() for entry in bucket.values()]
        entries.sort(key=_connection_order)
        return entries

    @receivers.setter
    def receivers(self, entries: Iterable[Entry]) -> None:
        entries = list(entries)
        for entry in entries:
            if not isinstance(entry, (WeakEntry, StrongEntry)) or entry.bucket.owner is not self:
                raise TypeError(
                    f"{self!r}.receivers can only be set to entries read from its own "
                    f"receivers attribute, not {entry!r}"
                )
        with self._mutex:
            self._collect_dead()
            # Skip dead receivers and receivers of dead senders; read priorities before
            # the buckets they live in are rebuilt.
            plan = [
                (entry, entry.priority)
                for entry in entries
                if entry() is not None and entry.bucket.alive()
            ]
            # One bucket per sender: an entry may come from an older bucket of the same
            # sender (say, saved before `receivers = []` and restored after new connects).
            buckets: dict[int, _Bucket] = {}
            for entry, _ in plan:
                buckets.setdefault(entry.bucket.sender_key, entry.bucket)
            for bucket in buckets.values():
                bucket.clear()
                bucket.priorities = None
            for entry, priority in plan:
                bucket = buckets[entry.bucket.sender_key]
                if entry.key in bucket:
                    continue  # the first occurrence wins, as with connect
                entry.bucket = bucket
                entry.seq = next(self._seq)
                bucket[entry.key] = entry
                bucket.set_priority(entry.key, priority)
            for bucket in self._buckets.values():
                if buckets.get(bucket.sender_key) is not bucket:
                    bucket.clear()  # release what it holds now (see _forget_sender)
            self._buckets = buckets
            self._cache.clear()

    @property
    def sender_receivers_cache(self) -> dict[int, Resolved]:
        """The cache of resolved receivers. Clearing it is always safe (and never needed),
        inside or outside ``with signal.lock``."""
        return self._cache

    def _live_receivers(self, sender: object) -> tuple[list[Receiver], list[Receiver]]:
        """Django's: the live receivers ``send(sender)`` would call, as a pair of lists
        (sync, async), each in dispatch order. Django 5.0 to 6.1 return this shape."""
        sync, async_ = self._cache[id(sender)]
        return _live(sync), _live(async_)

    def _clear_dead_receivers(self) -> None:
        """Django's: drop the entries of garbage-collected receivers and senders (Django's
        callers hold ``lock``; it works with or without). tocsin drops them as they die,
        so this only finishes what a collection had to queue meanwhile."""
        with self._mutex:
            self._collect_dead()

    def _log_robust_failure(self, receiver: object, err: Exception) -> None:
        """Django's: log a failing receiver as ``send_robust`` does."""
        _log_failure(receiver, err)

    @property
    def _dead_receivers(self) -> bool:
        """Django's flag "some entries are dead and not yet dropped"."""
        return bool(self._dead)

    @_dead_receivers.setter
    def _dead_receivers(self, value: bool) -> None:
        # Django's _flag_dead_receivers sets it; tocsin's own callbacks already did the work.
        pass


@overload
def receiver(
    signal: _Receivable[_S, _D],
    *,
    sender: _S = ...,
    weak: bool = ...,
    dispatch_uid: object = ...,
    priority: int = ...,
) -> _D: ...


# A list or tuple of signals: pyright checks the receiver against each signal's decorator
# (it types [a, b] as list[A | B], and a call of a union as a call of each member). mypy
# joins the elements to object when their payloads differ, and is then ambiguous between
# this overload and the next whenever a payload holds Any: it reads only the next one, and
# a list goes unchecked (see tocsin._typed, MYPY).
if not MYPY:

    @overload
    def receiver(
        signal: Sequence[_Receivable[_S, _D]],
        *,
        sender: _S = ...,
        weak: bool = ...,
        dispatch_uid: object = ...,
        priority: int = ...,
    ) -> _D: ...


@overload
def receiver(  # pyright: ignore[reportOverlappingOverload]
    signal: Sequence[Signal],
    *,
    sender: object = ...,
    weak: bool = ...,
    dispatch_uid: object = ...,
    priority: int = ...,
) -> _Decorator: ...


def receiver(signal: Any, **kwargs: Any) -> Any:
    """Decorator: connect the decorated function to *signal* (or to each of a sequence).

    *kwargs* go to ``connect`` unchanged. Returns the function itself, unwrapped.
    """
    # Any sequence, as the static types say (a deque, a list held in a variable...); a
    # string is a sequence too, but never one of signals.
    is_many = isinstance(signal, Sequence) and not isinstance(signal, (str, bytes))
    signals: list[Any] = list(signal) if is_many else [signal]
    for each in signals:
        if not callable(getattr(each, "connect", None)):
            raise TypeError(f"receiver() takes a Signal or a sequence of Signals, not {each!r}")

    def connect(function: _F) -> _F:
        for each in signals:
            each.connect(function, **kwargs)
        return function

    return connect


def _creating_module() -> str | None:
    """The module whose code is creating a signal (past Signal subclasses' __init__)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_name == "__init__":
        if not isinstance(frame.f_locals.get("self"), Signal):
            break
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_globals.get("__name__") if frame is not None else None


# -- dispatch helpers off the hot path -------------------------------------------------


def _observer(record: _hooks.SendRecord) -> Observer | None:
    """What calls the receivers of a watched send: an Observer if global hooks watch."""
    hooks = _hooks.global_hooks()
    return Observer(record, hooks) if hooks else None


def _without(refs: tuple[Dereference, ...], skipped: Any) -> tuple[Dereference, ...]:
    """*refs* less the receivers whose keys are *skipped* (muted)."""
    return tuple(
        ref for ref in refs if (receiver := ref()) is None or receiver_key(receiver) not in skipped
    )


def _live(refs: Iterable[Dereference]) -> list[Receiver]:
    return [receiver for ref in refs if (receiver := ref()) is not None]


def _call(
    refs: Iterable[Dereference], kwargs: dict[str, Any], observer: Observer | None = None
) -> Responses:
    # Each receiver is looked up just before its call, as in send().
    responses = []
    for ref in refs:
        receiver = ref()
        if receiver is not None:
            response = observer.call(receiver, kwargs) if observer else receiver(**kwargs)
            responses.append((receiver, response))
    return responses


def _call_robust(
    refs: Iterable[Dereference], kwargs: dict[str, Any], observer: Observer | None = None
) -> Responses:
    responses: Responses = []
    for ref in refs:
        receiver = ref()
        if receiver is None:
            continue
        try:
            response = observer.call(receiver, kwargs) if observer else receiver(**kwargs)
        except Exception as error:
            _log_failure(receiver, error)
            response = error
        responses.append((receiver, response))
    return responses


async def _dispatch_async(
    sync: tuple[Dereference, ...],
    async_: tuple[Dereference, ...],
    kwargs: dict[str, Any],
    robust: bool,
    observer: Observer | None = None,
) -> Responses:
    """Django 6.1's asend: the sync group in a worker thread first, then the async ones,
    on whichever event loop runs the caller (asyncio or trio, directly or through anyio)."""
    async_receivers = _live(async_)
    if not (sync or async_receivers):
        return []
    loop = _async.current_event_loop()
    context = contextvars.copy_context()
    try:
        responses: Responses = []
        if sync:
            call = _call_robust if robust else _call
            responses = await _async.run_in_worker_thread(
                functools.partial(call, sync, kwargs, observer), context, loop
            )
        if async_receivers:
            responses += await _call_async(
                async_receivers, kwargs, context, robust, observer, loop
            )
        return responses
    finally:
        _async.restore_context(context)


async def _call_async(
    receivers: list[Receiver],
    kwargs: dict[str, Any],
    context: contextvars.Context,
    robust: bool,
    observer: Observer | None = None,
    loop: _async.EventLoop | None = None,
) -> Responses:
    if robust:
        calls = [_guarded(receiver, kwargs, observer) for receiver in receivers]
    else:
        calls = []
        try:
            for receiver in receivers:
                calls.append(observer.acall(receiver, kwargs) if observer else receiver(**kwargs))
        except BaseException:
            # A receiver failed before returning its coroutine: the ones already made
            # will never run, and must not warn that they were never awaited.
            for call in calls:
                call.close()
            raise
    results = await _async.run_concurrently(calls, context, loop)
    return list(zip(receivers, results, strict=True))


async def _guarded(
    receiver: Receiver, kwargs: dict[str, Any], observer: Observer | None = None
) -> Any:
    try:
        if observer:
            return await observer.acall(receiver, kwargs)
        return await receiver(**kwargs)
    except Exception as error:
        _log_failure(receiver, error)
        return error


def _describe(receiver: object) -> str:
    # Django reads __qualname__, which partials and callable objects lack.
    name = getattr(receiver, "__qualname__", None)
    return name if isinstance(name, str) else repr(receiver)


def _log_failure(receiver: object, error: Exception) -> None:
    logger.error(
        "Error calling %s in Signal.send_robust() (%s)",
        _describe(receiver),
        error,
        exc_info=error,
    )


# -- the compiled send path ------------------------------------------------------------


# The pure-Python methods, whichever path is active: the compiled ones fall back to them,
# and the benchmarks measure them side by side with the compiled ones.
pure_send = Signal.send
pure_send_robust = Signal.send_robust


def _install_speedups() -> bool:
    """Make the compiled ``send`` and ``send_robust`` (``tocsin._speedups``) the methods of
    ``Signal``, where they can be; return whether they are.

    Not with ``TOCSIN_NO_EXTENSIONS`` set (to anything), not on other interpreters than
    CPython, not with the GIL disabled (the C code relies on it), and not when the
    extension was not built. The compiled methods call the pure-Python ones above for
    everything but the plain sync send (see ``_speedups.c``), so both behave the same.
    """
    if os.environ.get("TOCSIN_NO_EXTENSIONS") or sys.implementation.name != "cpython":
        return False
    if not getattr(sys, "_is_gil_enabled", lambda: True)():
        return False
    try:
        from tocsin import _speedups
    except ImportError:
        return False
    send, send_robust = _speedups.install(
        Signal,
        pure_send,
        pure_send_robust,
        _log_failure,
        NO_RECEIVERS,
        WeakEntry,
        WeakMethodEntry,
    )
    # setattr: the type checkers see the pure-Python methods, whose signatures these share.
    setattr(Signal, "send", send)  # noqa: B010
    setattr(Signal, "send_robust", send_robust)  # noqa: B010
    return True


COMPILED = _install_speedups()
