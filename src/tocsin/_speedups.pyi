# The compiled send path (src/tocsin/_speedups.c); tocsin._dispatcher installs it.
from collections.abc import Callable
from typing import Any

def install(
    cls: type[Any],
    send: Callable[..., Any],
    send_robust: Callable[..., Any],
    log_failure: Callable[[Any, Exception], None],
    no_receivers: Any,
    weak_entry: type[Any],
    weak_method_entry: type[Any],
    /,
) -> tuple[Callable[..., Any], Callable[..., Any]]: ...
