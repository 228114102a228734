"""Testing helpers: mute signals, capture their sends, and assert on what was sent.

Muting never disconnects anything: receivers connected while muted stay connected, and
the order of receivers is the same afterwards. It is scoped to the current thread or
asyncio task (so tests running in parallel do not mute each other) unless
``globally=True``::

    with mute(post_save, sender=User):
        session.commit()          # no post_save for User here; other senders still send

    with capture(order_placed) as sent:
        place_order(42)
    assert_sent_once(sent, sender=Shop, order_id=42)

``capture`` sees sends from every thread and task, muted ones included (``muted=True``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final, final

from tocsin._dispatcher import Signal
from tocsin._hooks import Hook, Muting, SendRecord, add_signal_hook, remove_signal_hook
from tocsin._registry import find_signal
from tocsin.inspect import signal_label  # re-exported: it was first defined here

__all__ = [
    "ANY_SENDER",
    "Capture",
    "assert_not_sent",
    "assert_sent",
    "assert_sent_once",
    "capture",
    "mute",
    "signal_label",
]


@final
class _AnySender:
    """The type of ``ANY_SENDER``."""

    _instance: _AnySender | None = None

    def __new__(cls) -> _AnySender:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ANY_SENDER"

    def __reduce__(self) -> str:
        return "ANY_SENDER"


ANY_SENDER: Final = _AnySender()
"""The default ``sender=`` of the helpers: any sender. ``sender=None`` means the sender
``None`` itself (a send made with ``sender=None``)."""

SignalSpec = Signal | str


def _resolve(signals: Iterable[SignalSpec]) -> list[Signal]:
    """Signals given as objects or as names (a dotted path or an explicit ``name=``)."""
    resolved = []
    for spec in signals:
        if isinstance(spec, Signal):
            resolved.append(spec)
        elif isinstance(spec, str):
            found = find_signal(spec)
            if found is None:
                raise LookupError(f"No signal is named {spec!r} (a dotted path or a name=)")
            resolved.append(found)
        else:
            raise TypeError(f"Expected a Signal or a signal's name, not {spec!r}")
    return resolved


# -- muting ---------------------------------------------------------------------------


def mute(
    *signals: SignalSpec,
    sender: object = ANY_SENDER,
    receivers: Collection[Callable[..., Any]] | None = None,
    globally: bool = False,
) -> Muting:
    """Mute *signals* while the returned object is active, as a context manager or as a
    decorator of a sync or async function.

    A signal may be given by name (``"myapp.signals.order_placed"``). ``sender``: only
    sends from this sender (by identity; ``None`` is the sender ``None``); by default,
    every sender. ``receivers``: skip only these receivers and call the others; by
    default the whole send is skipped and returns ``[]``. Scoped to the current thread
    or asyncio task (tasks started inside inherit it) unless ``globally`` is true.
    Nesting works: each block undoes only its own muting.

    Returns a ``Muting``, reusable and re-entrant.
    """
    if not signals:
        raise TypeError(
            "mute() needs at least one signal; to mute every signal, pass *tocsin.known_signals()"
        )
    return Muting(
        _resolve(signals),
        sender=None if sender is ANY_SENDER else sender,
        for_sender=sender is not ANY_SENDER,
        receivers=None if receivers is None else list(receivers),
        globally=globally,
    )


# -- capturing ------------------------------------------------------------------------


class Capture(list[SendRecord]):
    """The sends recorded by ``capture()``: a list of ``SendRecord``, in the order the
    sends started, with assertion methods.

    Each record holds ``signal``, ``sender``, ``kwargs`` (the keyword arguments sent),
    ``method`` (``"send"``, ``"asend_robust"``...), ``muted``, and once the send is over
    ``responses`` (``[(receiver, response), ...]``) or ``error``.
    """

    def __init__(self, signals: Iterable[Signal], sender: object = ANY_SENDER) -> None:
        super().__init__()
        self.signals = tuple(signals)
        self.sender = sender
        self._lock = threading.Lock()

    def _record(self, record: SendRecord) -> None:
        if self.sender is ANY_SENDER or record.sender is self.sender:
            with self._lock:
                self.append(record)

    @property
    def senders(self) -> list[Any]:
        """The sender of each send, in order."""
        return [record.sender for record in self]

    @property
    def kwargs(self) -> list[dict[str, Any]]:
        """The keyword arguments of each send, in order."""
        return [record.kwargs for record in self]

    def of(self, signal: Signal) -> list[SendRecord]:
        """The sends of *signal* only (for a capture of several signals)."""
        return [record for record in self if record.signal is signal]

    def assert_sent(self, sender: object = ANY_SENDER, **kwargs: Any) -> SendRecord:
        """``assert_sent(self, ...)``: see the function."""
        return assert_sent(self, sender=sender, **kwargs)

    def assert_sent_once(self, sender: object = ANY_SENDER, **kwargs: Any) -> SendRecord:
        """``assert_sent_once(self, ...)``: see the function."""
        return assert_sent_once(self, sender=sender, **kwargs)

    def assert_not_sent(self, sender: object = ANY_SENDER, **kwargs: Any) -> None:
        """``assert_not_sent(self, ...)``: see the function."""
        assert_not_sent(self, sender=sender, **kwargs)


class _Recorder(Hook):
    """The per-signal hook behind ``capture``."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def send_started(self, record: SendRecord) -> None:
        # Recorded when the send starts, so records are in send order even when sends
        # nest (a receiver sending again); the outcome is filled in when it finishes.
        self.capture._record(record)


@contextmanager
def capture(*signals: SignalSpec, sender: object = ANY_SENDER) -> Iterator[Capture]:
    """Record every send of *signals* (from any thread or task) while the block runs.

    Yields a ``Capture``: the list of ``SendRecord``, muted sends included (their
    ``muted`` is true). ``sender`` keeps only the sends from that sender (by identity).
    Receivers are still called: combine with ``mute`` to record without calling them.
    """
    if not signals:
        raise TypeError("capture() needs at least one signal")
    resolved = _resolve(signals)
    records = Capture(resolved, sender)
    hook = _Recorder(records)
    for signal in resolved:
        add_signal_hook(signal, hook)
    try:
        yield records
    finally:
        for signal in resolved:
            remove_signal_hook(signal, hook)


# -- assertions -----------------------------------------------------------------------


def assert_sent(
    records: Iterable[SendRecord],
    /,
    sender: object = ANY_SENDER,
    *,
    signal: Signal | None = None,
    **kwargs: Any,
) -> SendRecord:
    """Assert that a send among *records* matches: from *sender* (by identity, or
    equality for non-objects such as strings) if given, of *signal* if given, and with
    at least the keyword arguments *kwargs* (other arguments are ignored; compare with
    ``unittest.mock.ANY`` to require only that an argument is present).

    *records* is what ``capture()`` yields, or any list of ``SendRecord``. Returns the
    first matching record; raises ``AssertionError`` listing the sends made otherwise.
    """
    listed = list(records)
    matching = _matching(listed, sender, signal, kwargs)
    if not matching:
        raise AssertionError(
            f"Expected {_expectation(records, sender, signal, kwargs)}; "
            f"{_what_was_sent(listed, sender, kwargs)}"
        )
    return matching[0]


def assert_sent_once(
    records: Iterable[SendRecord],
    /,
    sender: object = ANY_SENDER,
    *,
    signal: Signal | None = None,
    **kwargs: Any,
) -> SendRecord:
    """Like ``assert_sent``, but exactly one send must match. Returns it."""
    listed = list(records)
    matching = _matching(listed, sender, signal, kwargs)
    if len(matching) != 1:
        raise AssertionError(
            f"Expected {_expectation(records, sender, signal, kwargs)} once; "
            f"{_what_was_sent(listed, sender, kwargs, matching=len(matching))}"
        )
    return matching[0]


def assert_not_sent(
    records: Iterable[SendRecord],
    /,
    sender: object = ANY_SENDER,
    *,
    signal: Signal | None = None,
    **kwargs: Any,
) -> None:
    """Assert that no send among *records* matches (see ``assert_sent``). With no
    criteria, that nothing was sent at all."""
    listed = list(records)
    matching = _matching(listed, sender, signal, kwargs)
    if matching:
        raise AssertionError(
            f"Expected {_expectation(records, sender, signal, kwargs, negated=True)}; "
            f"{_what_was_sent(listed, sender, kwargs, matching=len(matching))}"
        )


def _same_sender(actual: object, expected: object) -> bool:
    # Senders are matched by identity, as the dispatcher does; strings and numbers (which
    # are senders too) by equality, since equal ones need not be the same object.
    if actual is expected:
        return True
    return isinstance(expected, (str, int, float, bytes)) and actual == expected


def _matches(
    record: SendRecord, sender: object, signal: Signal | None, kwargs: dict[str, Any]
) -> bool:
    if signal is not None and record.signal is not signal:
        return False
    if sender is not ANY_SENDER and not _same_sender(record.sender, sender):
        return False
    return all(
        key in record.kwargs and value == record.kwargs[key] for key, value in kwargs.items()
    )


def _matching(
    records: list[SendRecord], sender: object, signal: Signal | None, kwargs: dict[str, Any]
) -> list[SendRecord]:
    _check_records(records)
    return [record for record in records if _matches(record, sender, signal, kwargs)]


def _check_records(records: list[Any]) -> None:
    for record in records:
        if not isinstance(record, SendRecord):
            raise TypeError(
                "The assertion helpers take the records of a capture "
                f"(with capture(signal) as sent: ... assert_sent(sent, ...)), not {record!r}"
            )


def _expectation(
    records: Iterable[SendRecord],
    sender: object,
    signal: Signal | None,
    kwargs: dict[str, Any],
    negated: bool = False,
) -> str:
    if signal is not None:
        name = signal_label(signal)
    elif isinstance(records, Capture) and records.signals:
        name = " or ".join(signal_label(s) for s in records.signals)
    else:
        signals = {id(r.signal): r.signal for r in records}
        name = " or ".join(signal_label(s) for s in signals.values()) or "the signal"
    criteria = []
    if sender is not ANY_SENDER:
        criteria.append(f"sender={_short(sender)}")
    criteria += [f"{key}={_short(value)}" for key, value in kwargs.items()]
    verb = "not to be sent" if negated else "to be sent"
    return f"{name} {verb}" + (f" with {', '.join(criteria)}" if criteria else "")


def _what_was_sent(
    records: list[SendRecord],
    sender: object,
    kwargs: dict[str, Any],
    matching: int | None = None,
) -> str:
    if not records:
        return "it was never sent."
    count = len(records)
    head = f"it was sent {count} time{'s' if count != 1 else ''}"
    if matching is not None:
        head += f" ({matching} matching)"
    lines = [head + ":"]
    for number, record in enumerate(records, 1):
        line = f"  {number}. {_describe_record(record)}"
        differences = _differences(record, sender, kwargs)
        if differences:
            line += f"\n       differs: {'; '.join(differences)}"
        lines.append(line)
    return "\n".join(lines)


def _describe_record(record: SendRecord) -> str:
    arguments = ", ".join(
        [f"sender={_short(record.sender)}"]
        + [f"{key}={_short(value)}" for key, value in record.kwargs.items()]
    )
    notes = []
    if record.muted:
        notes.append("muted")
    if record.error is not None:
        notes.append(f"raised {record.error!r}")
    suffix = f"  [{', '.join(notes)}]" if notes else ""
    return f"{signal_label(record.signal)}.{record.method}({arguments}){suffix}"


def _differences(record: SendRecord, sender: object, kwargs: dict[str, Any]) -> list[str]:
    differences = []
    if sender is not ANY_SENDER and not _same_sender(record.sender, sender):
        differences.append(f"sender is {_short(record.sender)}, not {_short(sender)}")
    for key, value in kwargs.items():
        if key not in record.kwargs:
            differences.append(f"{key} was not sent")
        elif value != record.kwargs[key]:
            differences.append(f"{key}={_short(record.kwargs[key])}, not {_short(value)}")
    return differences


def _short(value: object, limit: int = 80) -> str:
    if isinstance(value, type):
        text = f"{value.__module__}.{value.__qualname__}"
    else:
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ must not hide the assertion's message
            text = f"<{type(value).__qualname__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
