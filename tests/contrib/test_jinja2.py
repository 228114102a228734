"""template_rendered from Jinja2: sync, async and streamed renders, exactly once each."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import jinja2
import pytest
from jinja2.nativetypes import NativeEnvironment

from tocsin.contrib.jinja2 import (
    SignalEnvironment,
    SignalEnvironmentMixin,
    SignalTemplate,
    instrument,
    signal_template_class,
)
from tocsin.signals import template_rendered
from tocsin.testing import assert_sent_once, capture

TEMPLATES = {
    "hello.txt": "hello {{ name }}",
    "list.txt": "{% for i in items %}{{ i }};{% endfor %}",
    "base.txt": "[{% block body %}{% endblock %}]",
    "child.txt": "{% extends 'base.txt' %}{% block body %}{% include 'hello.txt' %}{% endblock %}",
    "broken.txt": "{{ 1 // 0 }}",
}


class Calls:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, str, dict[str, Any]]] = []

    def __call__(self, sender: Any, template: Any, context: Any, **kwargs: Any) -> None:
        assert sender is template
        self.calls.append((template, template.name, context))

    def names(self) -> list[str]:
        return [name for _, name, _ in self.calls]


@pytest.fixture
def calls() -> Iterator[Calls]:
    calls = Calls()
    template_rendered.connect(calls)
    yield calls
    template_rendered.disconnect(calls)


def environment(enable_async: bool = False) -> SignalEnvironment:
    return SignalEnvironment(loader=jinja2.DictLoader(TEMPLATES), enable_async=enable_async)


def test_render_sends_once_with_template_and_context(calls: Calls) -> None:
    template = environment().get_template("hello.txt")
    assert isinstance(template, SignalTemplate)
    assert template.render({"name": "ada"}, extra=1) == "hello ada"
    [(sent, name, context)] = calls.calls
    assert sent is template
    assert name == "hello.txt"
    assert context == {"name": "ada", "extra": 1}


def test_sender_filtering(calls: Calls) -> None:
    env = environment()
    hello, other = env.get_template("hello.txt"), env.get_template("list.txt")
    only_hello = Calls()
    template_rendered.connect(only_hello, sender=hello)
    try:
        hello.render(name="x")
        other.render(items=[])
    finally:
        template_rendered.disconnect(only_hello, sender=hello)
    assert only_hello.names() == ["hello.txt"]
    assert calls.names() == ["hello.txt", "list.txt"]


def test_render_async_awaits_async_receivers(calls: Calls) -> None:
    seen: list[str] = []

    async def async_receiver(sender: Any, template: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        seen.append(template.name)

    template_rendered.connect(async_receiver)
    try:
        template = environment(enable_async=True).get_template("hello.txt")
        assert asyncio.run(template.render_async(name="ada")) == "hello ada"
    finally:
        template_rendered.disconnect(async_receiver)
    assert seen == ["hello.txt"]
    assert calls.names() == ["hello.txt"]


def test_sync_render_in_an_async_environment_sends_once(calls: Calls) -> None:
    template = environment(enable_async=True).get_template("hello.txt")
    assert template.render(name="ada") == "hello ada"
    assert calls.names() == ["hello.txt"]


@pytest.mark.parametrize("enable_async", [False, True])
def test_stream_sends_after_the_last_chunk(calls: Calls, enable_async: bool) -> None:
    template = environment(enable_async).get_template("list.txt")
    chunks = template.generate(items=[1, 2])
    assert next(chunks) == "1"
    if not enable_async:  # an async environment renders everything before the first chunk
        assert calls.calls == []
    assert list(chunks) == [";", "2", ";"]
    assert calls.names() == ["list.txt"]
    assert "".join(template.stream(items=[3])) == "3;"
    assert calls.names() == ["list.txt", "list.txt"]


def test_abandoned_stream_sends_nothing(calls: Calls) -> None:
    chunks = environment().get_template("list.txt").generate(items=[1, 2])
    next(chunks)
    chunks.close()  # type: ignore[attr-defined]  # a generator, typed as an Iterator
    assert calls.calls == []


def test_generate_async_sends_after_the_last_chunk(calls: Calls) -> None:
    template = environment(enable_async=True).get_template("list.txt")

    async def consume() -> list[str]:
        out = []
        async for chunk in template.generate_async(items=[1, 2]):
            assert calls.calls == []
            out.append(chunk)
        return out

    assert asyncio.run(consume()) == ["1", ";", "2", ";"]
    assert calls.names() == ["list.txt"]


def test_only_the_rendered_template_is_reported(calls: Calls) -> None:
    assert environment().get_template("child.txt").render(name="ada") == "[hello ada]"
    assert calls.names() == ["child.txt"]


def test_a_failed_render_sends_nothing(calls: Calls) -> None:
    with pytest.raises(ZeroDivisionError):
        environment().get_template("broken.txt").render()
    assert calls.calls == []


def test_mixin_on_native_environment(calls: Calls) -> None:
    class NativeSignalEnvironment(SignalEnvironmentMixin, NativeEnvironment):
        pass

    template = NativeSignalEnvironment().from_string("{{ a + b }}")
    result: object = template.render(a=1, b=2)
    assert result == 3  # a native int, not a string
    assert calls.names() == [None]
    assert NativeSignalEnvironment.template_class.__name__ == "SignalNativeTemplate"


def test_instrument_an_existing_environment(calls: Calls) -> None:
    env = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES))
    env.get_template("hello.txt").render(name="before")  # cached with the plain class
    assert instrument(env) is env
    env.get_template("hello.txt").render(name="after")
    assert [context["name"] for _, _, context in calls.calls] == ["after"]
    assert signal_template_class(env.template_class) is env.template_class


def test_signal_template_made_directly(calls: Calls) -> None:
    assert SignalTemplate("hi {{ x }}").render(x=1) == "hi 1"
    assert len(calls.calls) == 1


def test_capture_sees_renders_with_no_receiver_connected() -> None:
    assert not template_rendered.has_listeners()
    with capture(template_rendered) as rendered:
        assert environment().get_template("hello.txt").render(name="Ada") == "hello Ada"

    assert_sent_once(rendered, context={"name": "Ada"})
