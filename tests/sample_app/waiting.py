"""A receiver for a model that is not mapped yet: `tocsin inspect` lists it as waiting."""

from typing import Any

from tocsin import receiver
from tocsin.signals import post_save


@receiver(post_save, sender="SampleAppOrder", priority=5)
def index_order(sender: type, instance: Any, created: bool, **kwargs: Any) -> None:
    """Would index each saved order, once a class named SampleAppOrder is mapped."""
