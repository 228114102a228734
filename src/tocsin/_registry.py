"""Every signal that exists, and the names to find it by.

Signals are held weakly: registering them never keeps one alive. A signal's names are
its explicit ``name=`` and its *dotted path*, the module attribute under which it is
defined (``"pizza.signals.pizza_done"``). The dotted path is unique and importable, so it
is what crosses process boundaries; the explicit name is for people.
"""

from __future__ import annotations

import importlib
import sys
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tocsin._dispatcher import Signal

__all__ = ["dotted_path", "find_signal", "known_signals", "register", "unregister"]

_lock = threading.Lock()
# Signal -> the module that created it (found from the creating frame, at no cost later).
_signals: weakref.WeakKeyDictionary[Signal, str] = weakref.WeakKeyDictionary()
_paths: weakref.WeakKeyDictionary[Signal, str] = weakref.WeakKeyDictionary()


def register(signal: Signal, module: str | None) -> None:
    """Record a new signal and the module it was created in (called by Signal itself)."""
    with _lock:
        _signals[signal] = module or ""


def unregister(signal: Signal) -> None:
    """Forget *signal* (tocsin.contrib.django does, when it gives a signal back to Django)."""
    with _lock:
        _signals.pop(signal, None)
        _paths.pop(signal, None)


def known_signals() -> list[Signal]:
    """Every signal alive in this process, in no particular order."""
    with _lock:
        return list(_signals)


def dotted_path(signal: Signal) -> str | None:
    """``"module.attribute"`` under which *signal* is defined, or None if it is not a
    module-level attribute (a signal created inside a function, say)."""
    with _lock:
        path = _paths.get(signal)
        module_name = _signals.get(signal, "")
    if path is not None:
        return path
    module = sys.modules.get(module_name)
    if module is None:
        return None
    for attribute, value in vars(module).items():
        if value is signal:
            path = f"{module_name}.{attribute}"
            with _lock:
                _paths[signal] = path
            return path
    return None


def find_signal(name: str, *, import_modules: bool = True) -> Signal | None:
    """The signal named *name*: a dotted path (importing its module if allowed and
    needed) or an explicit ``name=``. Returns None if there is none.

    Raises ``LookupError`` if an explicit name is shared by several signals.
    """
    from tocsin._dispatcher import Signal

    module_name, _, attribute = name.rpartition(".")
    if module_name:
        module = sys.modules.get(module_name)
        if module is None and import_modules:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                module = None
        value = getattr(module, attribute, None) if module is not None else None
        if isinstance(value, Signal):
            return value
    named = [signal for signal in known_signals() if signal.name == name]
    if len(named) > 1:
        paths = sorted(dotted_path(signal) or repr(signal) for signal in named)
        raise LookupError(
            f"Several signals are named {name!r} ({', '.join(paths)}): use a dotted path."
        )
    return named[0] if named else None
