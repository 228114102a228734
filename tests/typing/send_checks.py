"""Sending a typed signal: the payload is checked at every send method."""

from __future__ import annotations

from tocsin import OPTIONAL, Signal, signal


class PizzaStore:
    pass


@signal
def pizza_done(sender: type[PizzaStore], *, toppings: list[str], size: int = OPTIONAL) -> None:
    """Sent when a pizza is done."""


# Correct sends: positional or keyword sender, an optional keyword left out.
pizza_done.send(PizzaStore, toppings=["basil"], size=30)
pizza_done.send(sender=PizzaStore, toppings=["basil"], size=30)
pizza_done.send(PizzaStore, toppings=[])
pizza_done.send_robust(PizzaStore, toppings=["basil"], size=30)

# Wrong sends.
pizza_done.send(PizzaStore, size=30)  # E: mypy[call-arg] pyright[reportCallIssue]
pizza_done.send(PizzaStore, toppings=["basil"], sise=30)  # E: mypy[call-arg] pyright[reportCallIssue]
pizza_done.send(PizzaStore, toppings=["basil"], size="30")  # E: mypy[arg-type] pyright[reportArgumentType]
pizza_done.send(PizzaStore, toppings="basil")  # E: mypy[arg-type] pyright[reportArgumentType]
pizza_done.send(PizzaStore(), toppings=["basil"])  # E: mypy[arg-type] pyright[reportArgumentType]
pizza_done.send(PizzaStore, ["basil"])  # E: mypy[call-arg] pyright[reportCallIssue]
pizza_done.send_robust(PizzaStore, toppings=["basil"], colour="red")  # E: mypy[call-arg] pyright[reportCallIssue]
pizza_done.send_robust(PizzaStore)  # E: mypy[call-arg] pyright[reportCallIssue]


async def from_async_code() -> None:
    await pizza_done.asend(PizzaStore, toppings=["basil"])
    await pizza_done.asend_robust(sender=PizzaStore, toppings=["basil"], size=1)
    await pizza_done.asend(PizzaStore, toppings=["basil"], size=None)  # E: mypy[arg-type] pyright[reportArgumentType]
    await pizza_done.asend(object, toppings=["basil"])  # E: mypy[arg-type] pyright[reportArgumentType]
    await pizza_done.asend_robust(PizzaStore, topping=["basil"])  # E: mypy[call-arg] pyright[reportCallIssue]


# A strict signal is declared the same way.
@signal(strict="types")
def order_placed(sender: object, *, order_id: int, note: str | None = None) -> None: ...


order_placed.send(object(), order_id=1)
order_placed.send(object(), order_id=1, note=None)
order_placed.send(object(), order_id="1")  # E: mypy[arg-type] pyright[reportArgumentType]

# The untyped Signal is unchanged: anything goes.
untyped = Signal()
untyped.send(PizzaStore(), anything=1, at_all="yes")
untyped.send(None)
