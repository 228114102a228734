"""A Django-style app's receivers module, then its unit tests, as an application writes them.

Several receivers (stacked, lazy senders, a list, a bound method, a custom typed signal),
each called directly in the tests with its own keywords; the mistakes at the end are caught.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tocsin import receiver, signal
from tocsin.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save


@dataclass
class User:
    email: str
    is_active: bool = True


@dataclass
class Profile:
    user: User


@dataclass
class Order:
    number: int
    status: str = "new"
    tags: set[int] = field(default_factory=set[int])


class OrderTags:  # the intermediate model of Order.tags
    pass


profiles: list[Profile] = []
cache: dict[int, Order] = {}


# -- shop/signals.py --------------------------------------------------------------------


@signal
def order_shipped(sender: type[Order], *, order: Order, carrier: str, tracking: str | None = None) -> None:
    """Sent when an order leaves the warehouse."""


# -- shop/receivers.py (imported by ShopConfig.ready()) -----------------------------------


@receiver(post_save, sender=User)
def create_profile(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    if created:
        profiles.append(Profile(instance))


@receiver(pre_save, sender=Order)
def normalise_status(sender: type[Order], instance: Order, **kwargs: Any) -> None:
    instance.status = instance.status.lower()


@receiver(post_save, sender=Order)
@receiver(post_delete, sender=Order)
def invalidate_cache(sender: type[Order], instance: Order, **kwargs: Any) -> None:
    cache.pop(instance.number, None)


@receiver([pre_delete, post_delete], sender="shop.Order")  # a lazy sender, in a list
def log_deletion(instance: Order, using: str, **kwargs: Any) -> str:
    return f"order {instance.number} deleted from {using}"


@receiver(m2m_changed, sender=OrderTags)
def tags_changed(instance: Order, action: str, pk_set: set[Any] | None, **kwargs: Any) -> int:
    return len(pk_set or ())


@receiver(order_shipped, sender=Order)
def email_customer(sender: type[Order], order: Order, carrier: str, **kwargs: Any) -> str:
    return f"order {order.number} shipped by {carrier}"


@receiver(order_shipped)
async def notify_warehouse(order: Order, tracking: str | None = None, **kwargs: Any) -> bool:
    return tracking is not None


class AuditLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def record(self, sender: type[Any], instance: Any, **kwargs: Any) -> None:
        self.lines.append(f"{sender.__name__}: {instance!r}")


audit = AuditLog()
post_save.connect(audit.record, weak=False)
post_delete.connect(audit.record, weak=False)


# -- shop/tests/test_receivers.py -------------------------------------------------------


def test_a_profile_is_created_with_the_user() -> None:
    user = User("ada@example.com")
    create_profile(sender=User, instance=user, created=True)
    create_profile(sender=User, instance=user, created=False, using="default")
    assert [profile.user for profile in profiles] == [user]


def test_the_cache_is_invalidated_on_save_and_delete() -> None:
    order = Order(1)
    cache[1] = order
    invalidate_cache(sender=Order, instance=order, created=False)
    invalidate_cache(sender=Order, instance=order)
    normalise_status(sender=Order, instance=Order(2, "PAID"))
    assert 1 not in cache


def test_each_receiver_returns_what_it_says() -> None:
    message: str = log_deletion(instance=Order(3), using="default", sender=Order)
    added: int = tags_changed(instance=Order(4), action="post_add", pk_set={1, 2})
    shipped: str = email_customer(sender=Order, order=Order(5), carrier="DHL")
    audit.record(sender=Order, instance=Order(6), created=True)
    assert message == "order 3 deleted from default"
    assert added == 2
    assert shipped == "order 5 shipped by DHL"


async def test_the_warehouse_hears_of_tracked_orders() -> None:
    assert await notify_warehouse(order=Order(7), tracking="XY1")
    responses = await order_shipped.asend(Order, order=Order(7), carrier="DHL", tracking="XY1")
    assert len(responses) == 2


def test_sending_in_a_test() -> None:
    post_save.send(User)  # as Django's own tests do, no payload at all
    post_save.send(User, instance=User("b@example.com"), created=True, raw=False, using="default", update_fields=None)
    order_shipped.send(Order, order=Order(8), carrier="UPS")


# -- the mistakes both checkers catch -------------------------------------------------------


def test_with_mistakes() -> None:
    create_profile(sender=User, instance=User("c@example.com"))  # E: mypy[call-arg] pyright[reportCallIssue]
    email_customer(sender=Order, order=Order(9), carrier=None)  # E: mypy[arg-type] pyright[reportArgumentType]
    order_shipped.send(Order, order=Order(9))  # E: mypy[call-arg] pyright[reportCallIssue]
    label: int = log_deletion(instance=Order(10), using="default")  # E: mypy[assignment] pyright[reportAssignmentType]
    assert label


@receiver(order_shipped, sender=Order)  # E: mypy[call-overload] pyright[reportCallIssue]
def wrong_carrier_type(order: Order, carrier: int, **kwargs: Any) -> None: ...


@receiver(post_delete, sender=Order)  # E: mypy[call-overload] pyright[reportCallIssue]
@receiver(post_save, sender=Order)
def only_saves_have_created(instance: Order, created: bool, **kwargs: Any) -> None: ...
