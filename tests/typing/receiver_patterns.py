"""The usual receiver patterns (issue 16): each one type-checks, and keeps its check.

Lines marked for one checker only are where the two differ: pyright checks a list of
signals against each signal, and that a receiver takes ``**kwargs``; mypy cannot (see
the "What is checked" part of tocsin._typed's docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tocsin import Signal, receiver, signal
from tocsin.signals import post_delete, post_save, pre_delete, pre_save


class Article:
    pass


class Comment:
    pass


# 1. Stacked decorators: one receiver for both payloads, thanks to **kwargs.
@receiver(post_save, sender=Article)
@receiver(post_delete, sender=Article)
def reindex(sender: type[Article], instance: Article, **kwargs: Any) -> None: ...


@receiver(pre_save, sender=Article)
@receiver(post_save, sender=Article)
@receiver(pre_delete, sender=Article)
def three_deep(sender: type[Any], instance: Any, using: str, **kwargs: Any) -> str:
    return using


# The outer decorator still checks: post_delete sends no `created`.
@receiver(post_delete, sender=Article)  # E: mypy[call-overload] pyright[reportCallIssue]
@receiver(post_save, sender=Article)
def needs_created(sender: type[Article], instance: Article, created: bool, **kwargs: Any) -> None: ...


# 2. A decorated receiver keeps its own type: tests call it directly, by its own names.
@receiver(post_save, sender=Article)
def audit(sender: type[Article], instance: Article, created: bool, verbose: bool = False, **kwargs: Any) -> str:
    return "created" if created else "updated"


line: str = audit(sender=Article, instance=Article(), created=True)
line = audit(Article, Article(), False, verbose=True)  # its own parameter, not the payload's
three_deep(sender=Comment, instance=Comment(), using="default")
reindex(sender=Article, instance=Article())
audit(sender=Article, instance=Article(), created="yes")  # E: mypy[arg-type] pyright[reportArgumentType]
audit(sender=Article, instance=Article())  # E: mypy[call-arg] pyright[reportCallIssue]
number: int = audit(sender=Article, instance=Article(), created=True)  # E: mypy[assignment] pyright[reportAssignmentType]


def notify(sender: type[Article], instance: Article, created: bool, **kwargs: Any) -> int:
    return 1


connected = post_save.connect(notify, sender=Article)
count: int = connected(sender=Article, instance=Article(), created=False)  # connect keeps it too
connected(sender=Article, instance=Article(), created=None)  # E: mypy[arg-type] pyright[reportArgumentType]


@receiver(post_save, sender=Article)
async def in_async_code(sender: type[Article], instance: Article, **kwargs: Any) -> None: ...


async def a_test() -> None:
    await in_async_code(sender=Article, instance=Article(), created=True)


# 3. Any sequence of signals: a list held in a variable, a tuple, a parameter.
deletions = [pre_delete, post_delete]


@receiver(deletions, sender=Article)
def on_delete(sender: type[Article], instance: Article, using: str, **kwargs: Any) -> None: ...


@receiver((pre_delete, post_delete), sender=Article)
def on_delete_tuple(instance: Article, origin: Any, **kwargs: Any) -> None: ...


@receiver([post_save, post_delete], sender=Article)
def on_change(sender: type[Article], instance: Article, **kwargs: Any) -> None: ...


@receiver([post_save, Signal()])  # typed and untyped together
def on_either(instance: Any = None, **kwargs: Any) -> None: ...


# A variable holding signals with different payloads: mypy types it list[object]
# (its join of the two), so it needs an annotation there; pyright types it list[A | B].
changes: list[Signal] = [post_save, post_delete]


@receiver(changes, sender=Article)
def on_any_change(sender: type[Article], **kwargs: Any) -> None: ...


def connect_all(signals: Sequence[Signal]) -> None:
    @receiver(signals)
    def log(**kwargs: Any) -> None: ...


on_delete(sender=Article, instance=Article(), using="default")
on_change(sender=Article, instance=Article(), created=True)


# 4. The list form checks each signal with pyright; mypy connects a list unchecked.
@receiver([post_save, post_delete], sender=Article)  # E: pyright[reportCallIssue]
def only_for_saves(sender: type[Article], instance: Article, created: bool, **kwargs: Any) -> None: ...


@receiver((post_save, post_delete))  # E: pyright[reportCallIssue]
def tuple_only_for_saves(created: bool, **kwargs: Any) -> None: ...


@receiver(deletions)  # E: pyright[reportCallIssue]
def wrong_for_both(sender: type[Article], instance: Article, using: int, **kwargs: Any) -> None: ...


# 5. **kwargs: pyright requires it (every receiver is also sent `signal=`, and a sender may
# send more); mypy cannot express it, and connect() raises at run time.
@receiver(post_delete)  # E: pyright[reportCallIssue]
def no_kwargs(sender: type[Any], instance: Any, using: str, origin: Any) -> None: ...


@receiver(post_delete)  # E: pyright[reportCallIssue]
def no_kwargs_keywords_only(instance: Any, using: str, origin: Any) -> None: ...


def no_kwargs_connected(sender: type[Any], instance: Any, using: str, origin: Any) -> None: ...


post_delete.connect(no_kwargs_connected)  # E: pyright[reportCallIssue]


# 6. The four send methods agree: a model signal may be sent with no payload at all, and a
# partial payload is rejected by each.
post_save.send(Article)
post_save.send_robust(Article)
post_save.send(sender=Article)


async def sending() -> None:
    await post_save.asend(Article)
    await post_save.asend_robust(Article)
    await post_save.asend(Article, instance=Article(), created=True)  # E: mypy[call-overload] pyright[reportCallIssue]
    await post_save.asend_robust(Article, instance=Article())  # E: mypy[call-overload] pyright[reportCallIssue]


post_save.send(Article, instance=Article(), created=True)  # E: mypy[call-overload] pyright[reportCallIssue]
post_save.send_robust(Article, instance=Article(), created=True)  # E: mypy[call-overload] pyright[reportCallIssue]


# A plain typed signal has no such exception: its payload is required at every method.
@signal
def published(sender: type[Article], *, url: str) -> None: ...


published.send(Article)  # E: mypy[call-arg] pyright[reportCallIssue]
published.send_robust(Article)  # E: mypy[call-arg] pyright[reportCallIssue]


async def publishing() -> None:
    await published.asend(Article)  # E: mypy[call-arg] pyright[reportCallIssue]
    await published.asend_robust(Article)  # E: mypy[call-arg] pyright[reportCallIssue]
