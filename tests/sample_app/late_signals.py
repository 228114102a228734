"""Imported only by find_signal() in a test: a module nothing has imported yet."""

from tocsin import Signal

refund_issued = Signal()
