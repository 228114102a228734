# mypy: disallow-untyped-defs=False, disallow-incomplete-defs=False, disallow-untyped-calls=False
"""The compiled send path (``tocsin._speedups``) against the pure-Python one.

Every test here runs on whichever path is active (``make test`` runs the suite twice:
compiled, then with ``TOCSIN_NO_EXTENSIONS=1``). Most compare ``signal.send`` with the
pure-Python method called directly (``pure_send``) in the same process: on the compiled
path that checks the C code against the Python code it replaces; on the pure path both
are the same function and the tests check the behaviour itself. The rest count
references and memory, where C code goes wrong first: receivers, senders, arguments and
responses must be released after a send, including when receivers raise or die.
"""

import gc
import inspect
import logging
import os
import subprocess
import sys
import sysconfig
import traceback
import tracemalloc
import weakref

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tocsin
from tocsin import Signal, testing
from tocsin._dispatcher import pure_send, pure_send_robust

PURE = {"send": pure_send, "send_robust": pure_send_robust}
METHODS = pytest.mark.parametrize("method", ["send", "send_robust"])


class Store:
    """A sender."""


class Listener:
    """An object whose bound method is connected (weakly, through the instance)."""

    def __init__(self, name):
        self.name = name

    def on_event(self, sender, **kwargs):
        return (self.name, kwargs)


def answering(name):
    def receiver(sender, **kwargs):
        return (name, kwargs)

    receiver.__qualname__ = f"answering({name!r})"
    return receiver


def ordered(name):
    """A receiver that answers with its keyword arguments in the order it got them."""

    def receiver(sender, **kwargs):
        return (name, list(kwargs.items()))

    return receiver


class OrderedListener(Listener):
    def on_event(self, sender, **kwargs):
        return (self.name, list(kwargs.items()))


def failing(error):
    def receiver(sender, **kwargs):
        raise error

    return receiver


def call_both(signal, method, /, *args, **kwargs):
    """What ``signal.<method>`` and the pure-Python method return or raise, as comparable
    values: ``("ok", responses)`` or ``("error", type, message)``."""
    outcomes: list[tuple[object, ...]] = []
    for function in (getattr(signal, method), PURE[method].__get__(signal)):
        try:
            outcomes.append(("ok", function(*args, **kwargs)))
        except Exception as error:
            outcomes.append(("error", type(error), str(error)))
    return outcomes


# -- which path is active ------------------------------------------------------------


def _python(*code, env=None):
    result = subprocess.run(
        [sys.executable, "-c", "; ".join(code)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return result.stdout.strip()


def test_tocsin_no_extensions_selects_the_pure_python_methods_at_import():
    code = (
        "import tocsin",
        "from tocsin import _dispatcher",
        "print(tocsin.compiled, tocsin.Signal.send is _dispatcher.pure_send,"
        " tocsin.Signal.send_robust is _dispatcher.pure_send_robust)",
    )
    assert _python(*code, env={"TOCSIN_NO_EXTENSIONS": "1"}) == "False True True"


def _gil_enabled():
    return bool(getattr(sys, "_is_gil_enabled", lambda: True)())


def _extension_importable():
    try:
        import tocsin._speedups  # noqa: F401
    except ImportError:
        return False
    return True


def test_compiled_says_whether_the_c_methods_are_the_class_methods():
    code = (
        "import tocsin",
        "print(tocsin.compiled, type(tocsin.Signal.__dict__['send']).__name__,"
        " type(tocsin.Signal.__dict__['send_robust']).__name__)",
    )
    env = {"TOCSIN_NO_EXTENSIONS": ""}
    if _extension_importable() and _gil_enabled():
        assert _python(*code, env=env) == "True method_descriptor method_descriptor"
    else:
        assert _python(*code, env=env) == "False function function"


@pytest.mark.skipif(
    sys.implementation.name != "cpython" or bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    reason="the extension is only built for CPython with a GIL",
)
def test_an_install_from_this_checkout_built_the_extension():
    # `pip install -e .` (what `make` runs) builds it where a compiler is present; a
    # failed build would leave the suite silently testing the pure path twice.
    assert _extension_importable()


def test_this_run_uses_the_path_the_environment_asks_for():
    wanted = not os.environ.get("TOCSIN_NO_EXTENSIONS") and _gil_enabled()
    assert tocsin.compiled is (wanted and _extension_importable())


# -- the class's methods, as the pure ones are --------------------------------------


@METHODS
def test_the_methods_keep_an_inspectable_signature_and_their_docstring(method):
    function = getattr(Signal, method)
    parameters = inspect.signature(function).parameters
    assert list(parameters) == ["self", "sender", "named"]
    assert parameters["named"].kind is inspect.Parameter.VAR_KEYWORD
    bound = inspect.signature(getattr(Signal(), method)).parameters
    assert list(bound) == ["sender", "named"]
    assert (PURE[method].__doc__ or "").strip() in function.__doc__


@METHODS
def test_a_subclass_that_overrides_a_send_method_keeps_its_override(method):
    calls = []

    class Audited(Signal):
        def send(self, sender, **named):
            calls.append(("send", sender))
            return super().send(sender, **named)

        def send_robust(self, sender, **named):
            calls.append(("send_robust", sender))
            return super().send_robust(sender, **named)

    signal = Audited()
    receiver = answering("a")
    signal.connect(receiver)
    store = Store()

    sent = {"signal": signal, "size": 1}
    assert getattr(signal, method)(store, size=1) == [(receiver, ("a", sent))]
    with testing.capture(signal) as sends:
        getattr(signal, method)(store, size=2)
    assert calls == [(method, store), (method, store)]
    assert [send.kwargs for send in sends] == [{"size": 2}]


@METHODS
def test_the_methods_can_be_called_on_the_class(method):
    signal = Signal()
    receiver = answering("a")
    signal.connect(receiver)
    sent = {"signal": signal, "size": 3}
    assert getattr(Signal, method)(signal, None, size=3) == [(receiver, ("a", sent))]


# -- arguments -------------------------------------------------------------------------


@METHODS
@pytest.mark.parametrize("receiver_count", [0, 1, 2])
@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        ((Store(), Store()), {}),
        ((Store(),), {"sender": Store()}),
        ((Store(),), {"signal": "clash"}),
        ((Store(),), {"signal": "clash", "size": 1}),
        ((), {"sender": Store(), "signal": "clash"}),
    ],
    ids=["no-sender", "two-positional", "sender-twice", "signal", "signal-and-more", "kw-only"],
)
def test_wrong_calls_fail_with_the_pure_methods_error_text(method, receiver_count, args, kwargs):
    signal = Signal()
    for index in range(receiver_count):
        signal.connect(answering(f"r{index}"), weak=False)

    compiled, pure = call_both(signal, method, *args, **kwargs)
    assert compiled == pure
    if receiver_count and args:
        assert compiled[0] == "error"


@METHODS
def test_a_reserved_name_built_at_run_time_is_still_recognised(method):
    # Keyword names from a dict built at run time are not interned strings.
    signal = Signal()
    signal.connect(answering("a"), weak=False)
    signal.connect(answering("b"), weak=False)
    name = "".join(["sig", "nal"])

    compiled, pure = call_both(signal, method, Store(), **{name: 1})
    assert compiled == pure
    assert compiled[0] == "error"
    assert "multiple values for keyword argument 'signal'" in compiled[2]


@METHODS
def test_the_sender_may_be_passed_by_keyword(method):
    signal = Signal()
    receiver = answering("a")
    store = Store()
    signal.connect(receiver, sender=store)

    sent = {"signal": signal, "size": 1}
    assert getattr(signal, method)(sender=store, size=1) == [(receiver, ("a", sent))]


@METHODS
def test_huge_keyword_arguments_all_reach_every_receiver(method):
    signal = Signal()
    receivers = [answering(f"r{index}") for index in range(50)]
    for receiver in receivers:
        signal.connect(receiver)
    named = {f"argument_{index}": index for index in range(2000)}

    results = getattr(signal, method)(Store(), **named)
    assert [receiver for receiver, _ in results] == receivers
    sent = {"signal": signal, **named}
    assert [response for _, response in results] == [(f"r{i}", sent) for i in range(50)]


@METHODS
def test_each_receiver_gets_its_own_kwargs_dict(method):
    signal = Signal()
    seen = []

    def greedy(sender, **kwargs):
        kwargs.pop("size")
        kwargs["extra"] = True

    def after(sender, **kwargs):
        seen.append(dict(kwargs))

    signal.connect(greedy)
    signal.connect(after)
    getattr(signal, method)(None, size=1)
    assert seen == [{"signal": signal, "size": 1}]


# Keyword names as senders use them (anything but the two reserved ones), and values.
names = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: name not in ("signal", "sender")
)
payloads = st.dictionaries(names, st.integers() | st.text(max_size=3) | st.none(), max_size=8)


@settings(max_examples=150, deadline=None)
@given(
    payloads_sent=st.lists(payloads, min_size=1, max_size=6),
    layout=st.lists(
        st.sampled_from(["function", "method", "strong", "fails", "dead"]), max_size=8
    ),
    method=st.sampled_from(["send", "send_robust"]),
)
def test_sends_of_any_payload_match_the_pure_python_path(payloads_sent, layout, method):
    signal = Signal()
    kept = []
    for index, kind in enumerate(layout):
        if kind == "method":
            listener = OrderedListener(f"m{index}")
            kept.append(listener)
            signal.connect(listener.on_event)
        elif kind == "strong":
            signal.connect(ordered(f"s{index}"), weak=False)
        elif kind == "fails":
            signal.connect(failing(LookupError(f"f{index}")), weak=False)
        elif kind == "dead":
            listener = OrderedListener(f"d{index}")
            signal.connect(listener.on_event)
            del listener
        else:
            function = ordered(f"f{index}")
            kept.append(function)
            signal.connect(function)
    store = Store()
    for named in payloads_sent:
        compiled, pure = call_both(signal, method, store, **named)
        assert compiled == pure


@METHODS
@pytest.mark.parametrize("receiver_count", [1, 2, 3])
@pytest.mark.parametrize("named", [{}, {"size": 1}, {"size": 1, "toppings": ["basil"]}])
def test_receivers_get_their_keyword_arguments_in_the_pure_paths_order(
    method, receiver_count, named
):
    signal = Signal()
    for index in range(receiver_count):
        signal.connect(ordered(f"r{index}"), weak=False)

    compiled, pure = call_both(signal, method, Store(), **named)
    assert compiled == pure
    assert compiled[0] == "ok"


# -- receivers that change things mid-send -------------------------------------------


@METHODS
def test_a_receiver_that_dies_mid_send_is_skipped(method):
    signal = Signal()
    listeners = [Listener("first"), Listener("second"), Listener("third")]
    armed: list[bool] = []

    def killer(sender, **kwargs):
        if armed:
            del listeners[1]

    signal.connect(listeners[0].on_event)
    signal.connect(killer)
    signal.connect(listeners[1].on_event)
    signal.connect(listeners[2].on_event)
    assert len(getattr(signal, method)(None)) == 4  # resolves the cache for this sender
    armed.append(True)

    results = getattr(signal, method)(None)
    assert [response for _, response in results] == [
        ("first", {"signal": signal}),
        None,
        ("third", {"signal": signal}),
    ]
    assert len(getattr(signal, method)(None)) == 3


@METHODS
def test_a_receiver_that_disconnects_everyone_does_not_stop_this_send(method):
    signal = Signal()
    receivers = [answering("a"), answering("b")]

    def clearer(sender, **kwargs):
        for receiver in receivers:
            signal.disconnect(receiver)
        signal.sender_receivers_cache.clear()

    signal.connect(clearer)
    for receiver in receivers:
        signal.connect(receiver)

    first = getattr(signal, method)(None)
    assert [receiver for receiver, _ in first] == [clearer, *receivers]
    assert [receiver for receiver, _ in getattr(signal, method)(None)] == [clearer]


def test_a_receiver_may_send_again_until_the_recursion_limit():
    signal = Signal()

    def again(sender, **kwargs):
        return signal.send(sender, depth=kwargs["depth"] + 1)

    signal.connect(again)
    with pytest.raises(RecursionError):
        signal.send(None, depth=0)
    assert signal.send_robust(None, depth=0)[0][1].__class__ is RecursionError


# -- errors ----------------------------------------------------------------------------


def test_a_receivers_exception_shows_the_receivers_frame():
    signal = Signal()

    def broken_receiver(sender, **kwargs):
        raise LookupError("no such pizza")

    signal.connect(broken_receiver)
    with pytest.raises(LookupError) as raised:
        signal.send(None)
    frames = traceback.extract_tb(raised.value.__traceback__)
    assert frames[-1].name == "broken_receiver"
    assert frames[0].name == "test_a_receivers_exception_shows_the_receivers_frame"

    error = signal.send_robust(None)[0][1]
    assert traceback.extract_tb(error.__traceback__)[-1].name == "broken_receiver"


def test_send_robust_logs_inside_the_handling_of_the_error(caplog):
    signal = Signal()
    error = LookupError("no such pizza")
    handled = []

    class Spy(logging.Filter):
        def filter(self, record):
            handled.append(sys.exc_info()[1])
            return True

    signal.connect(failing(error), weak=False)
    spy = Spy()
    logger = logging.getLogger("tocsin.dispatch")
    logger.addFilter(spy)
    try:
        with caplog.at_level(logging.ERROR, logger="tocsin.dispatch"):
            assert signal.send_robust(None)[0][1] is error
    finally:
        logger.removeFilter(spy)
    assert handled == [error]
    assert sys.exc_info() == (None, None, None)
    assert caplog.records[0].exc_info[1] is error


def test_a_failure_to_log_propagates_with_the_receivers_error_as_context():
    signal = Signal()
    error = LookupError("no such pizza")

    class Broken(logging.Filter):
        def filter(self, record):
            raise RuntimeError("the log is full")

    signal.connect(failing(error), weak=False)
    broken = Broken()
    logger = logging.getLogger("tocsin.dispatch")
    logger.addFilter(broken)
    try:
        with pytest.raises(RuntimeError, match="the log is full") as raised:
            signal.send_robust(None)
    finally:
        logger.removeFilter(broken)
    assert raised.value.__context__ is error


def test_send_robust_lets_a_base_exception_through_at_once():
    signal = Signal()
    later = []
    signal.connect(failing(KeyboardInterrupt()), weak=False)
    signal.connect(lambda sender, **kwargs: later.append(1), weak=False)
    with pytest.raises(KeyboardInterrupt):
        signal.send_robust(None)
    assert later == []


# -- reference counts and memory -------------------------------------------------------


def _counts(*objects):
    return [sys.getrefcount(each) for each in objects]


@METHODS
@pytest.mark.parametrize("kind", ["function", "method", "strong"])
def test_sends_leave_every_reference_count_as_it_was(method, kind):
    signal = Signal()
    store, value, response = Store(), object(), object()

    class Answering:
        def answer(self, sender, **kwargs):
            return response

    listener = Answering()

    def receiver(sender, **kwargs):
        return response

    if kind == "method":
        signal.connect(listener.answer, sender=store)
    else:
        signal.connect(receiver, sender=store, weak=kind != "strong")
    send = getattr(signal, method)
    send(store, value=value, other=1)  # resolves the cache
    before = _counts(signal, store, value, response, receiver, listener)

    for _ in range(1000):
        results = send(store, value=value, other=1)
    assert results[0][1] is response
    del results
    assert _counts(signal, store, value, response, receiver, listener) == before


@METHODS
def test_responses_and_receivers_are_released_with_the_results(method):
    signal = Signal()

    class Response:
        pass

    made = []

    def receiver(sender, **kwargs):
        made.append(weakref.ref(response := Response()))
        return response

    signal.connect(receiver)
    results = getattr(signal, method)(None)
    assert made[0]() is results[0][1]
    del results
    assert made[0]() is None

    listener = Listener("short-lived")
    signal.connect(listener.on_event)
    watched = weakref.ref(listener)
    results = getattr(signal, method)(None)
    del listener
    assert watched() is not None  # the results hold the bound method, hence its instance
    del results
    assert watched() is None


def test_an_exception_in_send_releases_everything_it_held():
    signal = Signal()
    store, value = Store(), object()
    seen = []

    def first(sender, **kwargs):
        return object()

    def fails(sender, **kwargs):
        raise LookupError("no such pizza")

    signal.connect(first, sender=store)
    signal.connect(fails, sender=store)
    with pytest.raises(LookupError):
        signal.send(store, value=value)
    before = _counts(signal, store, value, first, fails)
    for _ in range(200):
        try:
            signal.send(store, value=value)
        except LookupError as error:
            seen.append(type(error))
    gc.collect()
    assert seen == [LookupError] * 200
    assert _counts(signal, store, value, first, fails) == before


def test_send_robust_failures_are_released_with_the_results():
    signal = Signal()
    store, value = Store(), object()

    class Failure(Exception):
        pass

    def fails(sender, **kwargs):
        raise Failure

    signal.connect(fails, sender=store)
    logging.getLogger("tocsin.dispatch").disabled = True
    try:
        signal.send_robust(store, value=value)
        gc.collect()
        before = _counts(signal, store, value, fails)
        results = signal.send_robust(store, value=value)
        error = weakref.ref(results[0][1])
        del results
        gc.collect()  # the pure path's frames in the traceback make a cycle
        assert error() is None
        assert _counts(signal, store, value, fails) == before
    finally:
        logging.getLogger("tocsin.dispatch").disabled = False


@METHODS
def test_many_sends_do_not_grow_memory(method):
    signal = Signal()
    receivers = [answering(f"r{index}") for index in range(40)]  # past the C stack buffers
    for receiver in receivers:
        signal.connect(receiver)
    send = getattr(signal, method)
    named = {f"n{index}": index for index in range(30)}
    store = Store()
    for _ in range(50):
        send(store, **named)
        send(store, size=1)
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        for _ in range(2000):
            send(store, **named)
            send(store, size=1)
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A leaked pair, list or tuple of names per send would be 100 KB and more.
    assert end - start < 20_000
