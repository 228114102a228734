"""Django's ``template_rendered`` from Jinja2 templates: ``pip install tocsin[jinja2]``.

Django sends ``template_rendered`` from its own template engine only, and only under its
test runner; its Jinja2 backend sends nothing. Here any Jinja2 environment can send it,
which is what a test needs to assert which templates a view rendered, with what::

    from tocsin.contrib.jinja2 import SignalEnvironment

    env = SignalEnvironment(loader=FileSystemLoader("templates"))

For an environment class of your own (or ``NativeEnvironment``), add the mixin:
``class MyEnvironment(SignalEnvironmentMixin, NativeEnvironment)``. For an environment
someone else created (Starlette's ``Jinja2Templates(...).env``), call
``instrument(env)``. Flask apps use ``tocsin.contrib.flask.install(app)`` instead.

Each render sends ``template_rendered(sender=template, template=template,
context=...)`` exactly once, after the output is complete: ``render``,
``render_async``, and ``generate``/``generate_async``/``stream`` after the last chunk
(a stream abandoned early sends nothing). ``context`` is a dict of the variables given
to the render call, as Flask sends it. Environments with ``enable_async=True`` send
once too: there ``render()`` runs ``render_async()``, which sends.

Only the template rendered is reported: templates pulled in with ``{% extends %}``,
``{% include %}`` or ``{% import %}`` are run by the compiled code of the first one and
are not rendered on their own.

``template_rendered`` is sent with ``send`` (``asend`` from the async methods), as
Django does, so a failing receiver (a test assertion) fails the render. A sync render
inside a running event loop cannot wait for async receivers: connect sync receivers
there, or render with ``render_async``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Iterator
from typing import Any, TypeVar

from jinja2 import Environment, Template

from tocsin.signals import template_rendered

__all__ = [
    "SignalEnvironment",
    "SignalEnvironmentMixin",
    "SignalTemplate",
    "instrument",
    "signal_template_class",
]

_E = TypeVar("_E", bound=Environment)


class SignalTemplate(Template):
    """A Jinja2 template that sends ``template_rendered`` each time it is rendered.

    Also a mixin: ``signal_template_class(NativeTemplate)`` puts it in front of another
    template class.
    """

    def render(self, *args: Any, **kwargs: Any) -> Any:
        """Render the template (as ``Template.render``), then send ``template_rendered``."""
        if self.environment.is_async:
            # Jinja runs render_async() on a loop of its own; that is where it is sent.
            return super().render(*args, **kwargs)
        output = super().render(*args, **kwargs)
        if template_rendered.has_listeners(self):
            template_rendered.send(sender=self, template=self, context=dict(*args, **kwargs))
        return output

    async def render_async(self, *args: Any, **kwargs: Any) -> Any:
        """Render the template (as ``Template.render_async``), then send
        ``template_rendered`` with ``asend``."""
        output = await super().render_async(*args, **kwargs)
        if template_rendered.has_listeners(self):
            await template_rendered.asend(
                sender=self, template=self, context=dict(*args, **kwargs)
            )
        return output

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Yield the output piece by piece; send ``template_rendered`` after the last."""
        if self.environment.is_async:
            # Jinja drives generate_async() here, which sends.
            yield from super().generate(*args, **kwargs)
            return
        yield from super().generate(*args, **kwargs)
        if template_rendered.has_listeners(self):
            template_rendered.send(sender=self, template=self, context=dict(*args, **kwargs))

    async def generate_async(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, object]:
        """Yield the output piece by piece; send ``template_rendered`` after the last."""
        async for chunk in super().generate_async(*args, **kwargs):
            yield chunk
        if template_rendered.has_listeners(self):
            await template_rendered.asend(
                sender=self, template=self, context=dict(*args, **kwargs)
            )


_classes: dict[type[Template], type[Template]] = {}
_classes_lock = threading.Lock()


def signal_template_class(template_class: type[Template]) -> type[Template]:
    """*template_class* with ``SignalTemplate`` in front (itself if it has it already)."""
    if issubclass(template_class, SignalTemplate):
        return template_class
    with _classes_lock:
        made = _classes.get(template_class)
        if made is None:
            # One class per base, so that every environment of a kind shares it.
            made = type(
                f"Signal{template_class.__name__}",
                (SignalTemplate, template_class),
                {"__module__": __name__, "__doc__": SignalTemplate.__doc__},
            )
            _classes[template_class] = made
        return made


class SignalEnvironmentMixin:
    """Mix into an ``Environment`` subclass (first) to make its templates send
    ``template_rendered``: ``class MyEnvironment(SignalEnvironmentMixin, Environment)``."""

    template_class: type[Template]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The template class the rest of the hierarchy uses, with SignalTemplate in front.
        cls.template_class = signal_template_class(cls.template_class)


class SignalEnvironment(SignalEnvironmentMixin, Environment):
    """A Jinja2 ``Environment`` whose templates send ``template_rendered``."""


def instrument(environment: _E) -> _E:
    """Make the templates of an existing *environment* send ``template_rendered``.

    Returns *environment*. Its template cache is emptied, since templates already loaded
    keep their class.
    """
    environment.template_class = signal_template_class(environment.template_class)
    if environment.cache is not None:
        environment.cache.clear()
    return environment
