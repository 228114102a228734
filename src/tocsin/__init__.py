"""tocsin: Django's signal dispatcher as a library for any Python program."""

from tocsin._commit import after_commit
from tocsin._dispatcher import Signal, WeakReceiverWarning, receiver
from tocsin._lazy import LazySenderWarning
from tocsin._registry import dotted_path, find_signal, known_signals

__all__ = [
    "LazySenderWarning",
    "Signal",
    "WeakReceiverWarning",
    "after_commit",
    "dotted_path",
    "find_signal",
    "known_signals",
    "receiver",
]
__version__ = "0.1.0"
