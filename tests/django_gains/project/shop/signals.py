"""The shop's own signal (module-level: workers find it by its dotted path)."""

from __future__ import annotations

import tocsin

order_placed = tocsin.Signal(name="shop.order_placed")
