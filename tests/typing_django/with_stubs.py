"""With django-stubs: receivers annotated with Django's own classes (real models, the
request), checked against tocsin.contrib.django.signals. Only
tests/django_gains/test_typing_stubs.py checks this file: it needs django-stubs."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from tocsin import receiver
from tocsin.contrib.django.signals import got_request_exception, post_save, pre_delete


class Order(models.Model):
    number: models.CharField[str, str] = models.CharField(max_length=20)


@receiver(post_save, sender=Order)
def audit(sender: type[Order], instance: Order, created: bool, **kwargs: Any) -> None:
    print(instance.number)


@receiver(got_request_exception)
def crashed(sender: Any, request: HttpRequest, **kwargs: Any) -> None:
    print(request.path)


@receiver(post_save, sender=Order)  # E: mypy[call-overload] pyright[reportCallIssue]
def created_is_a_bool(sender: type[Order], created: HttpRequest, **kwargs: Any) -> None: ...


pre_delete.connect(audit)  # E: mypy[call-overload] pyright[reportCallIssue]
post_save.send(Order, instance=Order(), created=True, raw=False, using="default", update_fields=None)
post_save.send(Order, instance=Order(), created=1.5, raw=False, using="default", update_fields=None)  # E: mypy[call-overload] pyright[reportArgumentType]
