"""Connecting to a typed signal: the receiver must accept the payload."""

from __future__ import annotations

from typing import Any

from tocsin import receiver, signal


class PizzaStore:
    pass


class Bakery:
    pass


@signal
def pizza_done(sender: type[PizzaStore], *, toppings: list[str], size: int) -> None: ...


# Receivers that accept the payload: sender first, or keywords only, typed or not.
def count(sender: type[PizzaStore], toppings: list[str], **kwargs: Any) -> None: ...
def only_keywords(size: int, **kwargs: Any) -> None: ...
def anything(sender: Any, **kwargs: Any) -> str:
    return "ok"
def wider(sender: type[object], toppings: list[str] | None, size: float, **kwargs: Any) -> None: ...
async def in_async_code(sender: type[PizzaStore], **kwargs: Any) -> None: ...


pizza_done.connect(count)
pizza_done.connect(only_keywords)
pizza_done.connect(anything, sender=PizzaStore)
pizza_done.connect(wider, weak=False, priority=5)
pizza_done.connect(in_async_code)


@receiver(pizza_done)
def decorated(sender: type[PizzaStore], size: int, **kwargs: Any) -> int:
    return size


@receiver(pizza_done, sender=PizzaStore, dispatch_uid="x")
def decorated_for_one(**kwargs: Any) -> None: ...


# Receivers that cannot accept it.
def wrong_type(sender: type[PizzaStore], toppings: str, **kwargs: Any) -> None: ...
def unknown_argument(sender: type[PizzaStore], colour: str, **kwargs: Any) -> None: ...
def wrong_sender(sender: type[Bakery], **kwargs: Any) -> None: ...
def keywords_wrong(size: str, **kwargs: Any) -> None: ...


pizza_done.connect(wrong_type)  # E: mypy[call-overload] pyright[reportCallIssue]
pizza_done.connect(unknown_argument)  # E: mypy[call-overload] pyright[reportCallIssue]
pizza_done.connect(wrong_sender)  # E: mypy[call-overload] pyright[reportCallIssue]
pizza_done.connect(keywords_wrong)  # E: mypy[call-overload] pyright[reportCallIssue]
pizza_done.connect(count, sender=Bakery)  # E: mypy[call-overload] pyright[reportCallIssue]


@receiver(pizza_done)  # E: mypy[call-overload] pyright[reportCallIssue]
def decorated_wrong(sender: type[PizzaStore], size: str, **kwargs: Any) -> None: ...


@receiver(pizza_done, sender=Bakery)  # E: mypy[misc] pyright[reportCallIssue]
def decorated_wrong_sender(sender: type[PizzaStore], **kwargs: Any) -> None: ...
