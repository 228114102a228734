"""The bakery's own signal: module-level, so a worker finds it by its dotted path."""

import tocsin

cake_ordered = tocsin.Signal(name="cake_ordered", doc="A customer ordered a cake.")
