"""Django's own signals, typed by tocsin.contrib.django.signals (checked without and
with django-stubs: tests/test_typing.py and tests/django_gains/test_typing_stubs.py)."""

from __future__ import annotations

from typing import Any

from tocsin import receiver
from tocsin.contrib.django.signals import (
    got_request_exception,
    m2m_changed,
    post_delete,
    post_save,
    pre_save,
    request_finished,
    request_started,
    user_logged_in,
)


class Order:
    pass


@receiver(post_save, sender=Order)
def audit(sender: type[Order], instance: Order, created: bool, using: str, **kwargs: Any) -> None: ...


@receiver(post_save, sender="shop.Order")  # a lazy sender, as Django's ModelSignal takes
def by_label(instance: Any, update_fields: frozenset[str] | None, **kwargs: Any) -> None: ...


@receiver(post_save)  # E: mypy[call-overload] pyright[reportCallIssue]
def created_is_a_bool(sender: Any, created: str, **kwargs: Any) -> None: ...


@receiver(pre_save)  # E: mypy[call-overload] pyright[reportCallIssue]
def no_created_before_saving(sender: Any, created: bool, **kwargs: Any) -> None: ...


@receiver(m2m_changed)
def on_change(action: str, pk_set: set[Any] | None, reverse: bool, **kwargs: Any) -> None: ...


@receiver(m2m_changed)  # E: mypy[call-overload] pyright[reportCallIssue]
def pk_set_may_be_none(pk_set: set[int], **kwargs: Any) -> None: ...


@receiver(request_finished)
def finished(sender: type[Any], **kwargs: Any) -> None: ...


@receiver(got_request_exception)
def crashed(sender: Any, request: Any, **kwargs: Any) -> None: ...


@receiver(user_logged_in)
def logged_in(sender: type[Any], request: Any, user: Any, **kwargs: Any) -> None: ...


@receiver(request_started)  # environ (WSGI) or scope (ASGI): not checked statically
def started(sender: Any, **kwargs: Any) -> None: ...


post_delete.connect(audit)  # E: mypy[call-overload] pyright[reportCallIssue]
post_save.connect(audit, sender=Order())  # E: mypy[call-overload] pyright[reportCallIssue]

post_save.send(Order, instance=Order(), created=True, raw=False, using="default", update_fields=None)
post_save.send(Order, instance=Order(), created=True)  # E: mypy[call-overload] pyright[reportCallIssue]
request_finished.send(Order)
request_finished.send(Order, extra=1)  # E: mypy[call-arg] pyright[reportCallIssue]
