"""The sample application's signals, as an application would define them."""

from tocsin import Signal

order_placed = Signal(name="order_placed", doc="Sent when an order is placed.")
order_shipped = Signal()
