"""Typed signals: a payload declared once, checked by mypy and pyright at send and connect.

A typed signal is declared from a *stub*: a function whose signature is the payload.

    @signal
    def pizza_done(sender: type[PizzaStore], *, toppings: list[str], size: int = 30) -> None:
        '''Sent when a pizza is done.'''

The first parameter is the sender; every other one is keyword-only (receivers are called
with keywords); a default marks a keyword the sender may leave out. The stub's signature
becomes a ``ParamSpec``, so that type checkers see ``send(sender, **payload)`` and the
receivers' signatures. At run time a typed signal is a plain ``Signal``: same methods,
same send path; ``strict=True`` (names) or ``strict="types"`` (names, and ``isinstance``
checks of simple annotations) derive their checks from the same declaration.

How a receiver is checked, and why this way (issue 16)
------------------------------------------------------

``@receiver(sig)`` and ``sig.connect(f)`` return *f* itself at run time, so statically
they return *f*'s own type too: ``Callable[_Q, _R]``, its own parameters (names, kinds,
defaults) and return. A test may call a decorated receiver directly, with its own
keywords, and stacked decorators each check the same function. The check is made
through the parameter's type, an overloaded callable protocol (``TakesPayload``): the
first overload is ``(*_Q.args, **_Q.kwargs) -> _R``, which solves _Q and _R from *f*;
the second is the payload, ``(sender: _S, /, **payload)``. Both checkers accept a
function for an overloaded callable only if it fits every overload, so this is an
intersection: "*f*, and a receiver of this payload". ``TakesPayloadByKeyword`` is the
same for receivers that take the payload's keywords only.

Tried, and why not: returning the input TypeVar ``_F`` bound to a callable built from the
signal's ParamSpec (pyright rejects a bound holding type variables; mypy accepts it but
does not bind them to the signal's, and rejects every receiver); a second parameter with
a default (a decorator is called with one argument, so it checks nothing); returning
``Callable[Concatenate[_S, _P], _R]`` (the old design: the payload's type replaced the
function's, so stacked decorators and direct calls failed).

What is checked, by whom:

- Both checkers: the sender's type, and that the receiver takes every keyword of the
  payload with a type wide enough, at ``connect``, ``@receiver`` and every ``send*``.
- A list or tuple of signals: pyright checks the receiver against each (it types
  ``[a, b]`` as ``list[A | B]``, and calling a union calls each member). mypy joins
  signals with different payloads to ``object``, and would then be ambiguous between
  the checked and unchecked overloads whenever a payload holds ``Any`` (the built-in
  ones do): for mypy a list is connected unchecked. A list held in a variable whose
  signals differ is ``list[object]`` to mypy: annotate it ``list[Signal]``.
- ``**kwargs``: pyright checks that a receiver takes it, with a third overload
  ``(*args: Any, receivers_must_take_kwargs: Any, **kwargs: Any)`` (an arbitrary keyword:
  the typing spec reads ``*args: Any, **kwargs: Any`` as ``...``, the rest as written).
  mypy reads that overload as "takes any positional argument too", which no receiver
  does, and a ParamSpec cannot be extended by a keyword (``Concatenate`` adds positional
  parameters only), so mypy cannot express it: ``connect`` raises at run time. Both of
  these pyright-only checks sit under ``if not MYPY:``, which mypy reads as false.
- Not checked: a receiver whose sender is keyword-only (``def r(*, sender, ...)``) is
  rejected though it works (a ParamSpec has no keyword-only prefix); a callable object
  comes back typed as a plain ``Callable`` of its ``__call__``.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    ParamSpec,
    Protocol,
    TypeAlias,
    TypeVar,
    overload,
)

from tocsin import _registry
from tocsin._dispatcher import MYPY, Responses, Signal

__all__ = ["OPTIONAL", "Connector", "Strictness", "TypedSignal", "payload_of", "signal"]

_S = TypeVar("_S")
_P = ParamSpec("_P")
_Q = ParamSpec("_Q")
_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)
_S_contra = TypeVar("_S_contra", contravariant=True)

Strictness: TypeAlias = bool | Literal["types"]


class _Optional:
    __slots__ = ()

    def __repr__(self) -> str:
        return "OPTIONAL"


# The default that marks a keyword argument senders may leave out, in a stub:
# ``size: int = OPTIONAL``. Any default does (``size: int = 30`` documents a usual value);
# this one type-checks whatever the annotation.
OPTIONAL: Any = _Optional()

_RESERVED = frozenset({"signal", "sender"})
_KEYWORD = inspect.Parameter.KEYWORD_ONLY
_VAR_KEYWORD = inspect.Parameter.VAR_KEYWORD
_SENDER_KINDS = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class TypedSignal(Signal, Generic[_S, _P]):
    """A ``Signal`` whose payload is declared by a stub function (see ``tocsin.signal``).

    ``payload``: the keyword arguments, name -> annotation (the sender excluded).
    ``required``: the names a send must give. ``sender_type``: the sender's annotation.
    """

    def __init__(
        self,
        stub: Callable[Concatenate[_S, _P], object],
        *,
        use_caching: bool = False,
        strict: Strictness = False,
        name: str | None = None,
        doc: str | None = None,
    ) -> None:
        if strict not in (False, True, "types"):
            raise TypeError(f"strict must be True, False or 'types', not {strict!r}")
        sender, raw, required, open_ = _read_stub(stub)
        self._stub = stub
        self._sender_name = sender
        self._raw = raw
        self._hints: dict[str, Any] | None = None
        self._types = False
        self.required: frozenset[str] = required
        self._open = open_
        if doc is None:
            doc = inspect.getdoc(stub)
        super().__init__(
            use_caching,
            providing_args=[name for name in raw if name != sender],
            strict=bool(strict),
            name=name if name is not None else getattr(stub, "__name__", None),
            doc=doc,
        )
        self._types = strict == "types"
        # The signal is defined where its stub is, not in this module.
        _registry.register(self, getattr(stub, "__module__", None))

    def __repr__(self) -> str:
        parts = [type(self).__name__]
        if self.name:
            parts.append(repr(self.name))
        arguments = ", ".join(
            name if name in self.required else f"{name}=..." for name in self.payload
        )
        parts.append(
            f"({self._sender_name}, *, {arguments})" if arguments else f"({self._sender_name})"
        )
        if self.strict:
            parts.append("strict='types'" if self._types else "strict=True")
        return f"<{' '.join(parts)} at {id(self):#x}>"

    # -- the declaration, for people and tools ------------------------------------------

    @property
    def payload(self) -> Mapping[str, Any]:
        """The declared keyword arguments, name -> annotation, in declaration order.

        Annotations are resolved objects when they can be (``list[str]``), else the
        strings written in the stub; ``Any`` where the stub has none. The sender is not
        in it (see ``sender_type``).
        """
        hints = self._resolved()
        return types.MappingProxyType(
            {
                name: hints.get(name, raw)
                for name, raw in self._raw.items()
                if name != self._sender_name
            }
        )

    @property
    def sender_type(self) -> Any:
        """The sender's declared annotation (``Any`` if the stub gives none)."""
        return self._resolved().get(self._sender_name, self._raw[self._sender_name])

    def _resolved(self) -> dict[str, Any]:
        if self._hints is not None:
            return self._hints
        try:
            self._hints = typing.get_type_hints(self._stub)
            return self._hints
        except Exception:
            pass
        # Some name is not defined (yet): resolve what can be, and try again next time.
        namespace = getattr(self._stub, "__globals__", {})
        hints: dict[str, Any] = {}
        for name, raw in self._raw.items():
            if isinstance(raw, str):
                try:
                    hints[name] = eval(raw, namespace)  # what get_type_hints does, one by one
                except Exception:
                    continue
            else:
                hints[name] = raw
        return hints

    # -- strict checking (called only when strict; never on the plain send path) --------

    def _checking(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def checked(sender: Any, **named: Any) -> Any:
            self._check_arguments(method.__name__, named)
            if self._types:
                self._check_sender(method.__name__, sender)
            return method(sender, **named)

        return checked

    def _check_arguments(self, method: str, named: dict[str, Any]) -> None:
        missing = sorted(self.required - named.keys())
        unexpected = [] if self._open else sorted(named.keys() - self._raw.keys())
        if missing or unexpected:
            problems: list[str] = []
            if missing:
                problems.append(f"missing keyword argument(s) {', '.join(map(repr, missing))}")
            if unexpected:
                problems.append(
                    f"unexpected keyword argument(s) {', '.join(map(repr, unexpected))}"
                )
            raise TypeError(f"{self!r}.{method}(): {'; '.join(problems)}")
        if self._types:
            payload = self.payload
            for name, value in named.items():
                if name in payload and _matches(value, payload[name]) is False:
                    raise TypeError(
                        f"{self!r}.{method}(): keyword argument {name!r} must be "
                        f"{_describe(payload[name])}, not {_describe_value(value)}"
                    )

    def _check_sender(self, method: str, sender: object) -> None:
        expected = self.sender_type
        if _matches(sender, expected) is False:
            raise TypeError(
                f"{self!r}.{method}(): sender must be {_describe(expected)}, "
                f"not {_describe_value(sender)}"
            )

    # -- what type checkers see ---------------------------------------------------------
    # The methods are Signal's, unchanged at run time; only their static types narrow.

    if TYPE_CHECKING:

        def send(self, sender: _S, *args: _P.args, **kwargs: _P.kwargs) -> Responses: ...

        def send_robust(self, sender: _S, *args: _P.args, **kwargs: _P.kwargs) -> Responses: ...

        async def asend(self, sender: _S, *args: _P.args, **kwargs: _P.kwargs) -> Responses: ...

        async def asend_robust(
            self, sender: _S, *args: _P.args, **kwargs: _P.kwargs
        ) -> Responses: ...

        def _receiver_decorator(  # type: ignore[override]
            self, sender: _S | None, /
        ) -> Connector[_S, _P]: ...

        # The receiver comes back with its own type (Callable[_Q, _R]: its own parameters
        # and return); TakesPayload* is what checks it against the payload.
        @overload  # type: ignore[override]
        def connect(
            self,
            receiver: TakesPayloadByKeyword[_Q, _R, _P],
            sender: _S | None = None,
            weak: bool = True,
            dispatch_uid: object = None,
            *,
            priority: int = 0,
        ) -> Callable[_Q, _R]: ...

        @overload
        def connect(
            self,
            receiver: TakesPayload[_Q, _R, _S, _P],
            sender: _S | None = None,
            weak: bool = True,
            dispatch_uid: object = None,
            *,
            priority: int = 0,
        ) -> Callable[_Q, _R]: ...

        def connect(  # pyright: ignore[reportIncompatibleMethodOverride]
            self,
            receiver: Callable[..., Any],
            sender: Any = None,
            weak: bool = True,
            dispatch_uid: object = None,
            *,
            priority: int = 0,
        ) -> Callable[..., Any]: ...


# A receiver, seen through the overloads of one callable protocol: itself (which solves _Q
# and _R, the receiver's own parameters and return), *and* a function of the payload, *and*
# (pyright only) a function that takes any keyword. Both checkers let a function stand for
# an overloaded callable only if it can stand for each overload: these are intersections.
# The sender is invariant: contravariant, as mypy suggests, pyright judges the overloads
# of Connector.__call__ and TypedSignal.connect overlapping, and picks the first always.
class TakesPayload(Protocol[_Q, _R_co, _S, _P]):  # type: ignore[misc]  # pyright: ignore[reportInvalidTypeVarUse]
    """A receiver of the payload that takes the sender first."""

    @overload
    def __call__(self, *args: _Q.args, **kwargs: _Q.kwargs) -> _R_co: ...

    @overload
    def __call__(self, sender: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> object: ...

    if not MYPY:

        @overload
        def __call__(
            self, *args: Any, receivers_must_take_kwargs: Any, **kwargs: Any
        ) -> object: ...


class TakesPayloadByKeyword(Protocol[_Q, _R_co, _P]):  # pyright: ignore[reportInvalidTypeVarUse]
    """A receiver of the payload that takes keywords only (the sender in ``**kwargs``)."""

    @overload
    def __call__(self, *args: _Q.args, **kwargs: _Q.kwargs) -> _R_co: ...

    @overload
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> object: ...

    if not MYPY:

        @overload
        def __call__(
            self, *args: Any, receivers_must_take_kwargs: Any, **kwargs: Any
        ) -> object: ...


class Connector(Protocol[_S, _P]):  # pyright: ignore[reportInvalidTypeVarUse]
    """What ``receiver(typed_signal)`` returns: a decorator that checks the receiver and
    returns it with its own static type (``Callable`` of its own parameters and return;
    see the module's docstring).

    A receiver takes the sender first (``def r(sender, toppings, **kwargs)``) or only
    keywords (``def r(toppings, **kwargs)``); either way it must accept the payload.
    """

    @overload
    def __call__(self, function: TakesPayloadByKeyword[_Q, _R, _P], /) -> Callable[_Q, _R]: ...

    @overload
    def __call__(self, function: TakesPayload[_Q, _R, _S, _P], /) -> Callable[_Q, _R]: ...


@overload
def signal(stub: Callable[Concatenate[_S, _P], object], /) -> TypedSignal[_S, _P]: ...


@overload
def signal(
    *,
    strict: Strictness = False,
    use_caching: bool = False,
    name: str | None = None,
    doc: str | None = None,
) -> Callable[[Callable[Concatenate[_S, _P], object]], TypedSignal[_S, _P]]: ...


def signal(
    stub: Callable[..., object] | None = None,
    /,
    *,
    strict: Strictness = False,
    use_caching: bool = False,
    name: str | None = None,
    doc: str | None = None,
) -> Any:
    """Decorator: declare a typed signal from a stub function (``@signal`` or
    ``@signal(strict=True)``). The stub's first parameter is the sender, the others
    (keyword-only) the payload; its name and docstring become the signal's."""

    def declare(stub: Callable[..., object]) -> TypedSignal[Any, ...]:
        return TypedSignal(stub, strict=strict, use_caching=use_caching, name=name, doc=doc)

    return declare if stub is None else declare(stub)


def payload_of(signal: Signal) -> Mapping[str, Any] | None:
    """The keyword arguments *signal* declares, name -> annotation, or None if unknown.

    A typed signal gives its declared annotations; an untyped one declared with
    ``providing_args`` gives ``Any`` for each name (sorted); otherwise None.
    """
    if isinstance(signal, TypedSignal):
        return signal.payload
    if signal.providing_args is not None:
        return types.MappingProxyType(dict.fromkeys(sorted(signal.providing_args), Any))
    return None


# -- reading the stub ------------------------------------------------------------------


def _read_stub(stub: Callable[..., object]) -> tuple[str, dict[str, Any], frozenset[str], bool]:
    """The sender's name, every parameter's raw annotation, the required names, and
    whether the stub takes ``**kwargs`` (an open payload)."""
    if not callable(stub):
        raise TypeError(f"a typed signal is declared from a function, not {stub!r}")
    parameters = list(inspect.signature(stub).parameters.values())
    if not parameters or parameters[0].kind not in _SENDER_KINDS:
        raise TypeError(
            f"{_name(stub)}: the first parameter of a signal's stub is the sender "
            "(def stub(sender: ..., *, argument: ...) -> None)"
        )
    sender = parameters[0]
    raw = {sender.name: _annotation(sender)}
    required: set[str] = set()
    open_ = False
    for parameter in parameters[1:]:
        if parameter.kind is _VAR_KEYWORD:
            open_ = True
            continue
        if parameter.kind is not _KEYWORD:
            raise TypeError(
                f"{_name(stub)}: {parameter.name!r} must be keyword-only (put it after '*'): "
                "receivers get the payload by keyword"
            )
        if parameter.name in _RESERVED:
            raise TypeError(
                f"{_name(stub)}: {parameter.name!r} is reserved: every receiver gets it"
            )
        raw[parameter.name] = _annotation(parameter)
        if parameter.default is inspect.Parameter.empty:
            required.add(parameter.name)
    return sender.name, raw, frozenset(required), open_


def _annotation(parameter: inspect.Parameter) -> Any:
    return Any if parameter.annotation is inspect.Parameter.empty else parameter.annotation


def _name(stub: object) -> str:
    return getattr(stub, "__qualname__", None) or repr(stub)


# -- run-time checks of simple annotations ---------------------------------------------


def _matches(value: object, annotation: Any) -> bool | None:
    """Whether *value* fits *annotation*: True, False, or None when it cannot be told
    (generic parameters, protocols, strings left unresolved: never a false alarm)."""
    if annotation is Any or annotation is object:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    if origin is None:
        if isinstance(annotation, type) and not _is_protocol(annotation):
            return isinstance(value, annotation)
        return None
    arguments = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        results = [_matches(value, argument) for argument in arguments]
        if True in results:
            return True
        return None if None in results else False
    if origin is Literal:
        return any(value == argument and type(value) is type(argument) for argument in arguments)
    if origin is typing.Annotated:
        return _matches(value, arguments[0])
    if origin is type:
        if not isinstance(value, type):
            return False
        target = arguments[0] if arguments else Any
        if target is Any:
            return True
        if isinstance(target, type) and typing.get_origin(target) is None:
            return issubclass(value, typing.cast("type[Any]", target))
        return None
    if isinstance(origin, type) and not _is_protocol(origin):
        return isinstance(value, origin)  # list[str]: a list (its items are not checked)
    return None


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False)) and not getattr(
        cls, "_is_runtime_protocol", False
    )


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type) and typing.get_origin(annotation) is None:
        return annotation.__qualname__
    if annotation is None or annotation is type(None):
        return "None"
    return repr(annotation).replace("typing.", "")


def _describe_value(value: object) -> str:
    if isinstance(value, type):
        return f"the class {value.__qualname__}"
    return type(value).__qualname__
