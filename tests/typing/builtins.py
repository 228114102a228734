"""Django's built-in signals carry typed payloads; model signals keep lazy senders."""

from __future__ import annotations

import sys
from typing import Any

from tocsin import receiver
from tocsin.signals import (
    class_prepared,
    m2m_changed,
    post_save,
    pre_delete,
    pre_migrate,
    request_started,
    template_rendered,
)


class Article:
    pass


@receiver(post_save, sender=Article)
def audit(sender: type[Article], instance: Article, created: bool, using: str, **kwargs: Any) -> None: ...


@receiver(post_save, sender="Article")  # a lazy sender, named before the class exists
def by_name(instance: Any, created: bool, **kwargs: Any) -> None: ...


@receiver(post_save)  # E: mypy[call-overload] pyright[reportCallIssue]
def wrong(sender: Any, created: str, **kwargs: Any) -> None: ...


@receiver(m2m_changed)
def on_change(action: str, pk_set: set[Any] | None, **kwargs: Any) -> None: ...


post_save.connect(audit, sender="blog.models.Article")
pre_delete.connect(audit)  # E: mypy[call-overload] pyright[reportCallIssue]
post_save.connect(audit, sender=Article())  # E: mypy[call-overload] pyright[reportCallIssue]

post_save.send(Article, instance=Article(), created=True, raw=False, using="default", update_fields=None)
post_save.send(Article)  # no payload at all: allowed for model signals, as in Django's tests
post_save.send(Article, instance=Article(), created=True)  # E: mypy[call-overload] pyright[reportCallIssue]
post_save.send(Article, instance=Article(), created="yes", raw=False, using="default", update_fields=None)  # E: mypy[call-overload] pyright[reportArgumentType]
class_prepared.send(Article)
class_prepared.send(Article, extra=1)  # E: mypy[call-arg] pyright[reportCallIssue]
template_rendered.send(sender=None, template=None, context={"a": 1})
template_rendered.send(sender=None, template=None, context=["a"])  # E: mypy[arg-type] pyright[reportArgumentType]

# Request and migration signals are typed TypedSignal[Any, ...]: no static payload check.
request_started.send(Article, environ={})
pre_migrate.send(None, app_config=None, verbosity=1, interactive=False, stdout=sys.stdout)
