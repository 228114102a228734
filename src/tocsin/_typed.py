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
"""

from __future__ import annotations

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
from tocsin._dispatcher import Responses, Signal

__all__ = ["OPTIONAL", "Connector", "Strictness", "TypedSignal", "payload_of", "signal"]

_S = TypeVar("_S")
_P = ParamSpec("_P")
_R = TypeVar("_R")

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

    def _check_send(self, method: str, sender: Any, named: dict[str, Any]) -> None:
        self._check_arguments(method, named)
        if self._types:
            self._check_sender(method, sender)

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

        @overload  # type: ignore[override]
        def connect(
            self,
            receiver: Callable[Concatenate[_S, _P], _R],
            sender: _S | None = None,
            weak: bool = True,
            dispatch_uid: object = None,
            *,
            priority: int = 0,
        ) -> Callable[Concatenate[_S, _P], _R]: ...

        @overload
        def connect(
            self,
            receiver: Callable[_P, _R],
            sender: _S | None = None,
            weak: bool = True,
            dispatch_uid: object = None,
            *,
            priority: int = 0,
        ) -> Callable[_P, _R]: ...

        def connect(  # pyright: ignore[reportIncompatibleMethodOverride]
            self,
            receiver: Callable[..., Any],
            sender: Any = None,
            weak: bool = True,
            dispatch_uid: object = None,
            *,
            priority: int = 0,
        ) -> Callable[..., Any]: ...


class Connector(Protocol[_S, _P]):  # pyright: ignore[reportInvalidTypeVarUse]
    """What ``receiver(typed_signal)`` returns: a decorator that checks the receiver.

    A receiver takes the sender first (``def r(sender, toppings, **kwargs)``) or only
    keywords (``def r(toppings, **kwargs)``); either way it must accept the payload.
    """

    @overload
    def __call__(
        self, function: Callable[Concatenate[_S, _P], _R], /
    ) -> Callable[Concatenate[_S, _P], _R]: ...

    @overload
    def __call__(self, function: Callable[_P, _R], /) -> Callable[_P, _R]: ...


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
    (keyword-only) the payload; its name and docstring become the signal's. Returns
    the ``TypedSignal``.

    Not to be confused with the module ``tocsin.signals``, which holds Django's built-in
    signals. Both names are kept on purpose: ``signals`` is where Django (and every
    Django app: ``myapp/signals.py``, found by ``autodiscover``) keeps its signals, and
    ``signal`` is the decorator's natural name, beside ``receiver``. One declares a
    signal; the other is a place where signals are declared.
    """

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
