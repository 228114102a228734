"""The pytest plugin: fixtures, the mute_signals marker, and the opt-in leak check."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# Each test writes a small test module using the plugin and runs pytest on it.
SIGNALS = """
from tocsin import Signal

order_placed = Signal(name="order_placed")
calls = []

def record(sender, **kwargs):
    calls.append(sender)

order_placed.connect(record)
"""


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(shop=SIGNALS)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    return pytester


def test_the_plugin_is_registered_through_its_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_plugin(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("tocsin")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_signal_capture_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from tocsin.testing import assert_sent_once
        from shop import order_placed

        def test_order(signal_capture):
            sent = signal_capture(order_placed)
            order_placed.send(sender="shop", order_id=1)
            assert_sent_once(sent, sender="shop", order_id=1)

        def test_capture_stopped_after_the_test():
            assert order_placed._intercept is None
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_mute_signals_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from shop import calls, order_placed

        def test_muted(mute_signals):
            mute_signals(order_placed)
            order_placed.send(sender="muted")
            assert calls == []

        def test_unmuted_in_the_next_test():
            order_placed.send(sender="next")
            assert calls == ["next"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_mute_signals_marker_covers_fixtures_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from shop import calls, order_placed

        @pytest.fixture
        def placed_order():
            order_placed.send(sender="fixture")

        @pytest.mark.mute_signals(order_placed)
        def test_muted(placed_order):
            order_placed.send(sender="test")
            assert calls == []

        @pytest.mark.mute_signals("shop.order_placed", sender="other")
        def test_muted_for_one_sender():
            order_placed.send(sender="other")
            order_placed.send(sender="shop")
            assert calls == ["shop"]

        @pytest.mark.mute_signals
        def test_every_signal():
            order_placed.send(sender="all")
            assert calls == ["shop"]

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.anyio
        @pytest.mark.mute_signals(order_placed)
        async def test_an_async_test_is_muted_too():
            assert await order_placed.asend(sender="async") == []

        def test_unmuted_afterwards():
            order_placed.send(sender="after")
            assert calls == ["shop", "after"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=5)


def test_the_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*mute_signals(*signals, sender=ANY_SENDER*"])


LEAKY = """
import pytest
from shop import order_placed

def leaked(sender, **kwargs):
    pass

def tidy(sender, **kwargs):
    pass

@pytest.fixture(scope="module")
def module_receiver():
    order_placed.connect(tidy, weak=False)
    yield
    order_placed.disconnect(tidy)

def test_leaks(module_receiver):
    order_placed.connect(leaked, weak=False)

def test_cleans_up(module_receiver):
    order_placed.disconnect(leaked)
    order_placed.connect(leaked, weak=False)
    order_placed.disconnect(leaked)
"""


def test_leak_check_is_off_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(LEAKY)
    pytester.runpytest().assert_outcomes(passed=2)


def test_leak_check_fails_the_leaking_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(LEAKY)
    result = pytester.runpytest("--tocsin-leaks=fail")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_leaks* left 1 receiver(s) connected with weak=False:",
            "  test_leak_check_fails_the_leaking_test.leaked (*.py:4) on shop.order_placed",
            "*Disconnect them at the end of the test*",
        ]
    )
    # The module-scoped fixture's receiver is not the first test's leak.
    assert "tidy" not in result.stdout.str()


def test_leak_check_warns_from_the_ini_option(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\ntocsin_leaks = warn\n"
        # This suite turns warnings into errors; the inner run must show them as warnings.
        "filterwarnings = default::tocsin.pytest_plugin.ReceiverLeakWarning\n"
    )
    pytester.makepyfile(LEAKY)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*ReceiverLeakWarning*left 1 receiver(s)*"])


def test_a_wrong_leak_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntocsin_leaks = loud\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tocsin_leaks must be one of off, warn, fail, not 'loud'*"])
