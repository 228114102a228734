"""tocsin: Django's signal dispatcher as a library for any Python program."""

from tocsin._dispatcher import Signal, WeakReceiverWarning, receiver

__all__ = ["Signal", "WeakReceiverWarning", "receiver"]
__version__ = "0.1.0"
