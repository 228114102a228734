"""tocsin's demo: a pizza shop whose modules talk through signals.

Run it with ``make demo`` (or ``python examples/demo.py`` with tocsin installed). It shows
receivers, sender filtering, ``dispatch_uid``, ``send_robust`` and an async receiver, then
runs ``models_demo.py`` (model signals from SQLAlchemy on SQLite) and ``web_demo.py``
(request and template signals from a Starlette app under uvicorn) and ``remote_demo.py``
(a worker subprocess receiving signals through Redis, when a server is reachable).
"""

from __future__ import annotations

import asyncio
import logging
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

from tocsin import Signal, receiver

# A signal is a module-level object: senders and receivers only need to import it.
pizza_done = Signal(name="pizza_done", providing_args=["toppings", "size"])


class PizzaStore:
    def __init__(self, name: str) -> None:
        self.name = name

    def send_pizza(self, toppings: list[str], size: int) -> list[tuple[Any, Any]]:
        return pizza_done.send(sender=self, toppings=toppings, size=size)

    def __repr__(self) -> str:
        return f"PizzaStore({self.name!r})"


downtown = PizzaStore("downtown")
airport = PizzaStore("airport")


# Any sender: every pizza from every store.
@receiver(pizza_done)
def count_pizzas(sender: PizzaStore, toppings: list[str], size: int, **kwargs: Any) -> str:
    print(f"  [kitchen log] {sender.name}: {size}cm pizza with {', '.join(toppings)}")
    return "logged"


# Sender filtering: only pizzas from the airport store.
@receiver(pizza_done, sender=airport)
def airport_delivery(sender: PizzaStore, **kwargs: Any) -> str:
    print(f"  [airport desk] boxing a pizza for gate delivery from {sender.name}")
    return "boxed"


# dispatch_uid: however often this module's set-up runs, the receiver is connected once.
def notify_customer(sender: PizzaStore, toppings: list[str], **kwargs: Any) -> str:
    print(f"  [sms] your pizza with {toppings[0]} is ready at {sender.name}")
    return "sent"


for _ in range(3):
    pizza_done.connect(notify_customer, dispatch_uid="notify-customer")


class OneLineFormatter(logging.Formatter):
    """The demo shows the log line; the traceback is on the record for real handlers."""

    def formatException(self, ei: Any) -> str:
        return "  [log] (traceback attached to the log record)"


def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("  [log] %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("tocsin").addHandler(handler)

    print("1. A pizza from downtown: every any-sender receiver runs, in connection order.")
    responses = downtown.send_pizza(["basil", "mozzarella"], size=30)
    print("   responses:", [(r.__name__, value) for r, value in responses])

    print("2. A pizza from the airport: the airport-only receiver joins in.")
    responses = airport.send_pizza(["ham"], size=25)
    print("   responses:", [(r.__name__, value) for r, value in responses])

    print("3. send_robust: a failing receiver is logged and returned, the others still run.")

    def oven_thermometer(sender: PizzaStore, **kwargs: Any) -> None:
        raise RuntimeError("thermometer unplugged")

    pizza_done.connect(oven_thermometer, weak=False)
    responses = pizza_done.send_robust(sender=downtown, toppings=["olives"], size=35)
    for r, value in responses:
        print(f"   {r.__name__}: {value!r}")
    pizza_done.disconnect(oven_thermometer)

    print("4. An async receiver: asend runs sync receivers, then async ones concurrently.")

    @receiver(pizza_done)
    async def tweet_pizza(sender: PizzaStore, toppings: list[str], **kwargs: Any) -> str:
        await asyncio.sleep(0.01)
        print(f"  [tweet] fresh {toppings[0]} pizza at {sender.name}!")
        return "tweeted"

    responses = asyncio.run(pizza_done.asend(sender=downtown, toppings=["mushroom"], size=28))
    print("   responses:", [(r.__name__, value) for r, value in responses])

    print("5. Plain send() runs async receivers too, when no event loop is running.")
    responses = downtown.send_pizza(["pepper"], size=32)
    print("   responses:", [(r.__name__, value) for r, value in responses])

    print(f"   {pizza_done!r} has {len(pizza_done.receivers)} receivers connected.")

    print("\nAnd Django's model signals, sent by the SQLAlchemy ORM (examples/models_demo.py):")
    try:
        runpy.run_path(str(Path(__file__).with_name("models_demo.py")), run_name="__main__")
    except ImportError as missing:
        print(f"   skipped: {missing} (pip install 'tocsin[sqlalchemy]')")

    print("\nAnd request and template signals from a web app (examples/web_demo.py):")
    runpy.run_path(str(Path(__file__).with_name("web_demo.py")), run_name="__main__")

    print("\nAnd signals across processes, when a Redis server is reachable (remote_demo.py):")
    try:
        runpy.run_path(str(Path(__file__).with_name("remote_demo.py")), run_name="__main__")
    except SystemExit as finished:  # remote_demo.py ends with sys.exit(status)
        if finished.code:
            raise

    print("\nAnd a Django project with tocsin installed (examples/django_project/run.py):")
    try:
        import django  # noqa: F401
    except ImportError as missing:
        print(f"   skipped: {missing} (pip install django)")
    else:
        # A process of its own: Django's settings are global, and the inspection lists
        # only the project's signals.
        django_demo = Path(__file__).with_name("django_project") / "run.py"
        subprocess.run([sys.executable, str(django_demo)], check=True)


if __name__ == "__main__":
    main()
