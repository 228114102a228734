"""Remote receivers: the process-wide registry that :func:`remote_receiver` declares into.

Declare a receiver for remote delivery with :func:`remote_receiver`::

    from tocsin.remote import remote_receiver

    @remote_receiver(order_placed, group="emails")
    def send_confirmation(sender, order_id, event_id, event_origin, **kwargs): ...

    @remote_receiver(settings_changed, broadcast=True)
    async def clear_cache(sender, **kwargs): ...

A **group** gets every event of the signal once, shared out across every process that
runs the group (a consumer group). The default group is the receiver's import path, so
each receiver is its own group and is retried on its own; receivers that share a group
are called together, in declaration order, and retried together. A **broadcast**
receiver runs in every worker process running when the event is published.

Remote receivers are not connected to the signal: a local ``send`` does not call them.
The worker (:mod:`tocsin.remote.worker`) calls them as Django calls receivers, with
``signal``, ``sender`` and the keyword arguments sent, plus ``event_id`` and
``event_origin``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import sys
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from tocsin._dispatcher import Signal
from tocsin._registry import dotted_path
from tocsin.inspect import check_receiver
from tocsin.remote._event import Event

__all__ = [
    "RemoteReceiver",
    "RemoteSignalWarning",
    "clear_remote_receivers",
    "remote_receiver",
    "remote_receivers",
    "signal_path",
]

_F = TypeVar("_F", bound=Callable[..., Any])


class RemoteSignalWarning(UserWarning):
    """A signal is named in a way other processes may not find (defined in ``__main__``)."""


def signal_path(signal: Signal, what: str) -> str:
    """The dotted path events name *signal* by; *what* ("published", "received
    remotely") goes into the errors.

    A signal defined in a module run as a script is found as ``__main__.name``, which
    no other process can import. Run with ``python -m package.module``, the module's
    real name is used instead; run as ``python file.py``, a :class:`RemoteSignalWarning`
    says so (the worker, which imports the module by its name, would never see it).
    Raises ``ValueError`` for a signal that is not a module-level attribute.
    """
    path = dotted_path(signal)
    if path is None:
        raise ValueError(
            f"{signal!r} cannot be {what}: it is not a module-level attribute, so events "
            "cannot name it"
        )
    module, _, name = path.rpartition(".")
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        real = getattr(spec, "name", None)
        if real and real != "__main__":
            return f"{real}.{name}"
        warnings.warn(
            f"signal {name!r} is defined in the script being run (__main__), so it is "
            f"{what} as {path!r}, a name no other process can import: workers listen on "
            "the module's real name and will never see these events. Define the signal "
            "in an importable module, or run the script with `python -m package.module`",
            RemoteSignalWarning,
            stacklevel=3,
        )
    return path


@dataclasses.dataclass(frozen=True)
class RemoteReceiver:
    """A receiver declared for remote delivery (see :func:`remote_receiver`)."""

    signal: Signal
    signal_path: str
    receiver: Callable[..., Any]
    group: str
    sender: object
    broadcast: bool
    stream: str
    is_async: bool

    def matches(self, sender: object) -> bool:
        """Whether an event sent by *sender* is for this receiver."""
        return self.sender is None or self.sender is sender or self.sender == sender

    async def call(self, event: Event) -> Any:
        """Call the receiver with *event* as the worker does; return what it returned.

        Keyword arguments: ``signal``, ``sender``, the event's own, ``event_id`` and
        ``event_origin``. A sync receiver runs in a thread (``asyncio.to_thread``), an
        async one on the running loop. For runners other than :class:`Worker` (a task
        queue's worker) that decoded the event themselves.
        """
        named = dict(event.kwargs)
        named.update(
            signal=self.signal, sender=event.sender, event_id=event.id, event_origin=event.origin
        )
        if self.is_async:
            return await self.receiver(**named)
        result = await asyncio.to_thread(self.receiver, **named)
        if inspect.isawaitable(result):
            return await result
        return result


_lock = threading.Lock()
_registry: list[RemoteReceiver] = []


def remote_receiver(
    signal: Signal,
    *,
    group: str | None = None,
    sender: object = None,
    broadcast: bool = False,
    stream: str | None = None,
) -> Callable[[_F], _F]:
    """Decorator: declare the function a receiver of *signal*'s events from other processes.

    ``group`` (default: the receiver's ``module.qualname``) names the consumer group;
    ``sender`` filters on the decoded sender (a class, or any value compared with ``==``);
    ``broadcast=True`` delivers to every running worker instead of to one per group;
    ``stream`` must match the one given to ``publish`` if that one was changed.
    The declaration goes into a process-wide registry that :class:`Worker` consumes for.
    Returns the function unchanged (it is not connected to the local signal).
    """
    path = signal_path(signal, "received remotely")

    def declare(function: _F) -> _F:
        is_async = check_receiver(function)
        name = group or f"{function.__module__}.{function.__qualname__}"
        entry = RemoteReceiver(
            signal=signal,
            signal_path=path,
            receiver=function,
            group=name,
            sender=sender,
            broadcast=broadcast,
            stream=path if stream is None else stream,
            is_async=is_async,
        )
        with _lock:
            if not any(
                r.receiver is function and r.signal is signal and r.group == name
                for r in _registry
            ):
                _registry.append(entry)
        return function

    return declare


def remote_receivers(groups: Iterable[str] | None = None) -> list[RemoteReceiver]:
    """The remote receivers declared in this process (of *groups* only, if given)."""
    wanted = None if groups is None else set(groups)
    with _lock:
        return [r for r in _registry if wanted is None or r.group in wanted]


def clear_remote_receivers(groups: Iterable[str] | None = None) -> None:
    """Forget the remote receivers declared (of *groups* only): for tests."""
    wanted = None if groups is None else set(groups)
    with _lock:
        _registry[:] = [r for r in _registry if wanted is not None and r.group not in wanted]
