"""The checks made when a receiver is connected (and when a signal is created).

They live apart from the dispatcher because other parts of tocsin (the remote worker's
receiver registry) check receivers the same way; ``tocsin.inspect.check_receiver`` is
the public name.
"""

from __future__ import annotations

import inspect
import sys
import warnings
from collections.abc import Iterable
from types import FunctionType


class WeakReceiverWarning(UserWarning):
    """A receiver was connected in a way that lets it be garbage collected at once.

    A lambda connected with ``weak=True`` (the default) has no other reference, so it is
    gone before it can ever be called. Connect it with ``weak=False``, or use a function.
    """


def argument_names(names: Iterable[str] | None) -> frozenset[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise TypeError(
            f"providing_args must be a list of argument names, not the string {names!r}"
        )
    names = frozenset(names)
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"providing_args must hold argument names, not {name!r}")
    return names


def check_receiver(receiver: object) -> bool:
    """Check that *receiver* can be connected, and return whether it is async.

    A plain function, by far the most common receiver, is answered from its code flags
    alone; everything else goes through ``inspect``.
    """
    if type(receiver) is FunctionType:
        flags = receiver.__code__.co_flags
        if not flags & inspect.CO_VARKEYWORDS:
            raise ValueError("Signal receivers must accept keyword arguments (**kwargs).")
        if flags & inspect.CO_COROUTINE:
            return True
        # A sync function marked as async (inspect.markcoroutinefunction, or asgiref's
        # marker on 3.11). getattr, not __dict__: reading __dict__ would create one.
        marked = getattr(receiver, "_is_coroutine_marker", None) or getattr(
            receiver, "_is_coroutine", None
        )
        return marked is not None and inspect.iscoroutinefunction(receiver)
    if not callable(receiver):
        raise TypeError("Signal receivers must be callable.")
    if not _accepts_kwargs(receiver):
        raise ValueError("Signal receivers must accept keyword arguments (**kwargs).")
    if inspect.iscoroutinefunction(receiver):
        return True
    if isinstance(receiver, type):
        return False
    # Callable objects: what is called is their class's __call__.
    return inspect.iscoroutinefunction(_call_method(receiver))


def _accepts_kwargs(receiver: object) -> bool:
    """Whether *receiver* takes ``**kwargs``; a function's code flags answer without inspect."""
    function = getattr(receiver, "__func__", receiver)
    if not isinstance(function, FunctionType) and not isinstance(receiver, type):
        function = _call_method(receiver)
    if isinstance(function, FunctionType):
        return bool(function.__code__.co_flags & inspect.CO_VARKEYWORDS)
    try:
        signature = inspect.signature(receiver)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True  # nothing to judge by (some builtins): let it through
    return any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())


def warn_weak_lambda(signal: object, receiver: object) -> None:
    # Point the warning at the user's line, past connect() and the receiver decorator.
    frame, stacklevel = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("tocsin."):
        frame, stacklevel = frame.f_back, stacklevel + 1  # type: ignore[assignment]
    warnings.warn(
        f"{receiver!r} is connected weakly to {signal!r}: nothing else refers to a lambda, "
        "so it will be garbage collected and never called. "
        "Connect it with weak=False, or use a named function.",
        WeakReceiverWarning,
        stacklevel=stacklevel + 1,
    )


def _call_method(instance: object) -> object:
    """The ``__call__`` defined by a callable object's class, which is what gets called."""
    return inspect.getattr_static(type(instance), "__call__", None)
