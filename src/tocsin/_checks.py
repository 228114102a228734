"""The checks made when a receiver is connected (and when a signal is created).

They live apart from the dispatcher because other parts of tocsin (the remote worker's
receiver registry) check receivers the same way; ``tocsin.inspect.check_receiver`` is
the public name. Each mistake gets a message that names the receiver and shows the fix;
the one for a missing ``**kwargs`` starts with Django's own sentence, so that code
matching on it keeps working.
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from collections.abc import Iterable
from types import FunctionType

# Django's message, kept as the start of ours.
KWARGS_REQUIRED = "Signal receivers must accept keyword arguments (**kwargs)."


class MethodReceiverWarning(UserWarning):
    """A function defined in a class body, with ``self`` first, was connected as it is.

    ``@receiver(signal)`` on a method decorates the plain function while the class is
    being created: it would be called without an instance (and fail, missing ``self``).
    Connect the bound method instead (``signal.connect(self.method)`` in ``__init__``),
    or use a module-level function or a ``@staticmethod`` without ``self``.
    """


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


def check_receiver(receiver: object, signal: object = None) -> bool:
    """Check that *receiver* can be connected (to *signal*, named in messages), and
    return whether it is async.

    Raises ``TypeError`` if it is not callable and ``ValueError`` if it does not take
    ``**kwargs``; warns (``MethodReceiverWarning``) if it is a method's plain function.
    A plain function, by far the most common receiver, is answered from its code flags
    alone; everything else goes through ``inspect``.
    """
    if type(receiver) is FunctionType:
        code = receiver.__code__
        flags = code.co_flags
        if not flags & inspect.CO_VARKEYWORDS:
            raise ValueError(_kwargs_message(receiver))
        if code.co_argcount and code.co_varnames[0] == "self":
            _check_not_a_method(receiver, signal)
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
        raise ValueError(_kwargs_message(receiver))
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
    warnings.warn(
        f"{receiver!r} is connected weakly to {signal!r}: nothing else refers to a lambda, "
        "so it will be garbage collected and never called. "
        "Connect it with weak=False, or use a named function.",
        WeakReceiverWarning,
        stacklevel=_user_stacklevel(),
    )


def _check_not_a_method(function: FunctionType, signal: object) -> None:
    """Warn if *function* (first parameter ``self``) was defined in a class body."""
    owner, _, name = function.__qualname__.rpartition(".")
    # "Kitchen.on_order" or "setup.<locals>.Kitchen.on_order": a class body.
    # "setup.<locals>.on_order": a nested function, which may well take a "self".
    if not owner or owner.endswith("<locals>"):
        return
    target = f" to {signal!r}" if signal is not None else ""
    warnings.warn(
        f"{function.__module__}.{function.__qualname__} is connected{target} as a plain "
        f"function, but it is a method of {owner} (defined in the class body, with 'self' "
        "first): it would be called without an instance and fail. Connect the bound method "
        f"instead, e.g. in {owner}.__init__: signal.connect(self.{name}); or make it a "
        "module-level function, or a @staticmethod without 'self'.",
        MethodReceiverWarning,
        stacklevel=_user_stacklevel(),
    )


def _kwargs_message(receiver: object) -> str:
    """Django's sentence, then which receiver, and how to fix it."""
    function = _defining_function(receiver)
    fix = "wrap it in a function that takes **kwargs and calls it with what it needs"
    if function is not None:
        try:
            parameters = [str(p) for p in inspect.signature(function).parameters.values()]
        except (TypeError, ValueError):
            pass
        else:
            signature = ", ".join([*parameters, "**kwargs"])
            fix = f"add **kwargs to its parameters: def {function.__name__}({signature}): ..."
    return (
        f"{KWARGS_REQUIRED} {_label(receiver)} does not: receivers are called as "
        f"receiver(signal=..., sender=..., **named), so {fix}"
    )


def _defining_function(receiver: object) -> FunctionType | None:
    """The function whose parameter list the fix shows, if there is one to show."""
    if isinstance(receiver, type):
        candidate = inspect.getattr_static(receiver, "__init__", None)
    elif isinstance(receiver, FunctionType):
        candidate = receiver
    else:
        candidate = getattr(receiver, "__func__", None) or _call_method(receiver)
    return candidate if isinstance(candidate, FunctionType) else None


def _label(receiver: object) -> str:
    """A receiver's name for messages: ``module.qualname``, or what it wraps."""
    if isinstance(receiver, functools.partial):
        return f"functools.partial({_label(receiver.func)})"
    qualname = getattr(receiver, "__qualname__", None)
    if isinstance(qualname, str):
        module = getattr(receiver, "__module__", None)
        return f"{module}.{qualname}" if module and module != "builtins" else qualname
    kind = type(receiver)
    return f"a {kind.__module__}.{kind.__qualname__} instance"


def _user_stacklevel() -> int:
    """The stacklevel of the caller's line, past connect() and the receiver decorator."""
    frame, stacklevel = sys._getframe(2), 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith("tocsin."):
        frame, stacklevel = frame.f_back, stacklevel + 1  # type: ignore[assignment]
    return stacklevel


def _call_method(instance: object) -> object:
    """The ``__call__`` defined by a callable object's class, which is what gets called."""
    return inspect.getattr_static(type(instance), "__call__", None)
