"""Taking part in sends: muting, capturing and observing them.

Three things can step into a signal's sends:

- **mute rules** (``tocsin.testing.mute``): skip the whole send, or some receivers, or
  only for one sender; scoped to the current thread or asyncio task, or global;
- **hooks on one signal** (``tocsin.testing.capture``): told of every send of it;
- **global hooks** (observability: ``tocsin.add_hook``, the OpenTelemetry integration):
  told of every send of every signal, and of every receiver call.

A signal with none of them active sends through its ordinary, fast path. While any is
active, the signal's private ``_intercept`` is set, and its send methods (always the
class's own: nothing is replaced on the instance) test it first and take the
intercepted path. The cost is paid only by those signals, only then.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tocsin._refs import receiver_key

if TYPE_CHECKING:
    from tocsin._dispatcher import Signal

__all__ = [
    "Hook",
    "MuteRule",
    "ReceiverCall",
    "SendRecord",
    "add_hook",
    "remove_hook",
]


@dataclass
class SendRecord:
    """One send of a signal, as hooks (and ``capture``) see it.

    ``kwargs`` are the keyword arguments sent (without ``signal`` and ``sender``).
    ``responses`` is what the send returned, or None if it raised ``error``. ``muted``
    says whether a mute rule suppressed the whole send. ``duration`` is in seconds.
    """

    signal: Signal
    sender: Any
    kwargs: dict[str, Any]
    method: str
    muted: bool = False
    responses: list[tuple[Any, Any]] | None = None
    error: BaseException | None = None
    duration: float | None = None
    started: float = field(default_factory=time.perf_counter, repr=False)
    # Per-hook state for the duration of the send (an OpenTelemetry span, say).
    state: dict[object, Any] = field(default_factory=dict, repr=False)


@dataclass
class ReceiverCall:
    """One receiver call within a send: its response or error, and its duration."""

    send: SendRecord
    receiver: Callable[..., Any]
    response: Any = None
    error: BaseException | None = None
    duration: float | None = None
    started: float = field(default_factory=time.perf_counter, repr=False)
    state: dict[object, Any] = field(default_factory=dict, repr=False)


class Hook:
    """Base class for hooks: override the methods you need; each returns None.

    ``send_started``/``send_finished`` run around each send, ``receiver_started``/
    ``receiver_finished`` around each receiver call, in the thread or task that makes
    the call (so context variables set in ``*_started`` are seen until ``*_finished``).
    A hook that raises breaks the send: hooks must not raise.
    """

    def send_started(self, record: SendRecord) -> None:
        """Called before a send dispatches (also for muted sends)."""

    def send_finished(self, record: SendRecord) -> None:
        """Called after a send, with its responses or error and its duration."""

    def receiver_started(self, call: ReceiverCall) -> None:
        """Called before a receiver is called (only for global hooks)."""

    def receiver_finished(self, call: ReceiverCall) -> None:
        """Called after a receiver returned or raised (only for global hooks)."""


@dataclass(frozen=True, eq=False)
class MuteRule:
    """What one ``mute()`` suppresses: whole signals, or only some receivers, optionally
    only for one sender (matched by identity)."""

    signals: tuple[Signal, ...]
    sender: object = None
    for_sender: bool = False
    receivers: frozenset[Any] | None = None  # receiver keys; None mutes the whole signal

    def applies(self, signal: Signal, sender: object) -> bool:
        return any(s is signal for s in self.signals) and (
            not self.for_sender or sender is self.sender
        )


def receiver_keys(receivers: Collection[Callable[..., Any]]) -> frozenset[Any]:
    """The keys that identify *receivers* (bound methods by instance and function)."""
    return frozenset(receiver_key(receiver) for receiver in receivers)


# Everything "whole send muted" means to the intercepted path.
MUTED = object()

_lock = threading.Lock()
_context_rules: contextvars.ContextVar[tuple[MuteRule, ...]] = contextvars.ContextVar(
    "tocsin_mute_rules", default=()
)
_global_rules: list[MuteRule] = []
_global_hooks: tuple[Hook, ...] = ()


def global_hooks() -> tuple[Hook, ...]:
    """The hooks told of every send (read without a lock: the tuple is replaced whole)."""
    return _global_hooks


def add_hook(hook: Hook) -> None:
    """Tell *hook* of every send of every signal, and of every receiver call."""
    global _global_hooks
    from tocsin._registry import known_signals

    with _lock:
        if any(existing is hook for existing in _global_hooks):
            return
        _global_hooks = (*_global_hooks, hook)
    for signal in known_signals():
        signal._refresh_intercept()


def remove_hook(hook: Hook) -> None:
    """Stop telling *hook* of sends; does nothing if it was not added."""
    global _global_hooks
    from tocsin._registry import known_signals

    with _lock:
        _global_hooks = tuple(existing for existing in _global_hooks if existing is not hook)
    for signal in known_signals():
        signal._refresh_intercept()


def push_rule(rule: MuteRule, *, globally: bool) -> contextvars.Token[Any] | None:
    """Start muting by *rule*; returns what ``pop_rule`` needs to stop."""
    for signal in rule.signals:
        signal._count_mute_rule(+1)
    if globally:
        with _lock:
            _global_rules.append(rule)
        return None
    return _context_rules.set((*_context_rules.get(), rule))


def pop_rule(rule: MuteRule, token: contextvars.Token[Any] | None) -> None:
    """Stop muting by *rule*."""
    if token is None:
        with _lock:
            _global_rules[:] = [r for r in _global_rules if r is not rule]
    else:
        try:
            _context_rules.reset(token)
        except ValueError:
            # Exited in another context than it was entered in (a generator resumed
            # elsewhere, say): remove just this rule from the current one.
            _context_rules.set(tuple(r for r in _context_rules.get() if r is not rule))
    for signal in rule.signals:
        signal._count_mute_rule(-1)


def mute_decision(signal: Signal, sender: object) -> object:
    """For a send of *signal* from *sender* here: ``MUTED``, a set of receiver keys to
    skip, or None (nothing muted)."""
    rules = [*_context_rules.get(), *_global_rules]
    skipped: set[Any] = set()
    for rule in rules:
        if rule.applies(signal, sender):
            if rule.receivers is None:
                return MUTED
            skipped |= rule.receivers
    return skipped or None


class Observer:
    """Calls receivers for one send while global hooks watch each call."""

    __slots__ = ("hooks", "record")

    def __init__(self, record: SendRecord, hooks: tuple[Hook, ...]) -> None:
        self.record = record
        self.hooks = hooks

    def call(self, receiver: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """Call a sync receiver; returns its response (or raises its error)."""
        call = self._started(receiver)
        try:
            call.response = receiver(**kwargs)
        except BaseException as error:
            call.error = error
            raise
        finally:
            self._finished(call)
        return call.response

    async def acall(self, receiver: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """Call and await an async receiver; returns its response (or raises its error)."""
        call = self._started(receiver)
        try:
            call.response = await receiver(**kwargs)
        except BaseException as error:
            call.error = error
            raise
        finally:
            self._finished(call)
        return call.response

    def _started(self, receiver: Callable[..., Any]) -> ReceiverCall:
        call = ReceiverCall(self.record, receiver)
        for hook in self.hooks:
            hook.receiver_started(call)
        return call

    def _finished(self, call: ReceiverCall) -> None:
        call.duration = time.perf_counter() - call.started
        for hook in self.hooks:
            hook.receiver_finished(call)


def add_signal_hook(signal: Signal, hook: Hook) -> None:
    """Tell *hook* of every send of *signal* (not of receiver calls)."""
    signal._add_hook(hook)


def remove_signal_hook(signal: Signal, hook: Hook) -> None:
    """Stop telling *hook* of *signal*'s sends."""
    signal._remove_hook(hook)


class Muting:
    """Mutes signals while active: a context manager, and a decorator for sync and async
    functions. Made by ``Signal.muted()`` and ``tocsin.testing.mute()``.

    Scoped to the current thread or asyncio task unless ``globally``; receivers connected
    meanwhile stay connected, and nothing about the receivers changes.
    """

    def __init__(
        self,
        signals: Collection[Signal],
        *,
        sender: object = None,
        for_sender: bool = False,
        receivers: Collection[Callable[..., Any]] | None = None,
        globally: bool = False,
    ) -> None:
        self.rule = MuteRule(
            tuple(signals),
            sender,
            for_sender,
            None if receivers is None else receiver_keys(receivers),
        )
        self.globally = globally
        self._tokens: list[contextvars.Token[Any] | None] = []

    def __enter__(self) -> Muting:
        self._tokens.append(push_rule(self.rule, globally=self.globally))
        return self

    def __exit__(self, *exc_info: object) -> None:
        pop_rule(self.rule, self._tokens.pop())

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        import functools
        import inspect

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def muted_async(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await function(*args, **kwargs)

            return muted_async

        @functools.wraps(function)
        def muted(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return function(*args, **kwargs)

        return muted

    def _fresh(self) -> Muting:
        # One Muting per call: a decorated function may run in several threads at once.
        fresh = Muting.__new__(Muting)
        fresh.rule, fresh.globally, fresh._tokens = self.rule, self.globally, []
        return fresh
