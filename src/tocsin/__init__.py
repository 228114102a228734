"""tocsin: Django's signal dispatcher as a library for any Python program."""

from tocsin._commit import after_commit
from tocsin._dispatcher import COMPILED as compiled
from tocsin._dispatcher import (
    Connection,
    MethodReceiverWarning,
    Signal,
    WeakReceiverWarning,
    receiver,
)
from tocsin._hooks import Hook, ReceiverCall, SendRecord, add_hook, remove_hook
from tocsin._lazy import LazySenderWarning
from tocsin._registry import dotted_path, find_signal, known_signals
from tocsin._typed import OPTIONAL, TypedSignal, payload_of, signal
from tocsin.discovery import autodiscover

__all__ = [
    "OPTIONAL",
    "Connection",
    "Hook",
    "LazySenderWarning",
    "MethodReceiverWarning",
    "ReceiverCall",
    "SendRecord",
    "Signal",
    "TypedSignal",
    "WeakReceiverWarning",
    "add_hook",
    "after_commit",
    "autodiscover",
    "compiled",
    "dotted_path",
    "find_signal",
    "known_signals",
    "payload_of",
    "receiver",
    "remove_hook",
    "signal",
]
__version__ = "0.1.0"
