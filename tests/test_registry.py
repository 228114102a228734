"""Finding signals: every signal alive, and its names (explicit and dotted path)."""

from __future__ import annotations

import gc
import sys

import pytest

import tocsin
from tocsin import Signal, dotted_path, find_signal, known_signals
from tocsin.signals import post_save


def test_every_signal_is_known_while_it_lives():
    signal = Signal(name="ephemeral")
    assert signal in known_signals()
    del signal
    gc.collect()
    assert all(s.name != "ephemeral" for s in known_signals())


def test_a_module_level_signal_has_a_dotted_path():
    from tests.sample_app import signals

    assert dotted_path(signals.order_placed) == "tests.sample_app.signals.order_placed"
    assert dotted_path(signals.order_shipped) == "tests.sample_app.signals.order_shipped"
    assert dotted_path(post_save) == "tocsin.signals.post_save"


def test_a_signal_made_inside_a_function_has_no_dotted_path():
    assert dotted_path(Signal()) is None


def test_a_signal_subclass_records_the_module_that_created_it():
    class Named(Signal):
        def __init__(self) -> None:
            super().__init__(name="subclassed")

    created = Named()
    module.created_here = created  # type: ignore[attr-defined]
    try:
        assert dotted_path(created) == f"{__name__}.created_here"
    finally:
        del module.created_here


module = sys.modules[__name__]


def test_find_signal_by_dotted_path_imports_the_module():
    assert "tests.sample_app.late_signals" not in sys.modules
    found = find_signal("tests.sample_app.late_signals.refund_issued")
    assert found is not None
    assert found is sys.modules["tests.sample_app.late_signals"].refund_issued
    assert find_signal("tests.sample_app.late_signals.refund_issued", import_modules=False)


def test_find_signal_by_explicit_name():
    from tests.sample_app import signals

    assert find_signal("order_placed") is signals.order_placed
    assert find_signal("post_save") is post_save
    assert find_signal("no_such_signal") is None
    assert find_signal("no.such.module.signal") is None


def test_an_explicit_name_shared_by_two_signals_is_ambiguous():
    first, second = Signal(name="twice"), Signal(name="twice")
    with pytest.raises(LookupError, match="Several signals are named 'twice'"):
        find_signal("twice")
    assert first is not second


def test_the_registry_is_public_api():
    assert tocsin.find_signal is find_signal
