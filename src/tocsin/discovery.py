"""Finding and importing the modules that connect receivers (Django's ``ready()``).

Receivers declared with ``@receiver`` are connected when their module is imported, so a
program must import those modules at start-up. ``autodiscover`` does it, once each:

- for each package given, its ``signals`` submodule (or another name), if it has one;
- for each installed distribution, the modules it lists under the ``tocsin.receivers``
  entry-point group (in ``pyproject.toml``:
  ``[project.entry-points."tocsin.receivers"] myplugin = "myplugin.receivers"``).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from types import ModuleType

__all__ = ["ENTRY_POINT_GROUP", "DiscoveryError", "autodiscover"]

ENTRY_POINT_GROUP = "tocsin.receivers"

_lock = threading.RLock()
# What has been discovered, so that nothing is imported (or re-imported) twice: a module
# removed from sys.modules and imported again would connect its receivers a second time.
_discovered: dict[str, ModuleType] = {}
_entry_points_loaded: set[tuple[str, str]] = set()


class DiscoveryError(ImportError):
    """A receivers module exists but failed to import (the error is its ``__cause__``)."""


def autodiscover(
    *packages: str | ModuleType,
    module: str | Iterable[str] = "signals",
    entry_points: bool = True,
) -> list[str]:
    """Import ``<package>.<module>`` for each of *packages* (names or modules), and the
    modules installed distributions register under the ``tocsin.receivers`` entry-point
    group (unless ``entry_points`` is false), so that their receivers are connected.

    Each is imported at most once per process, however often this is called. A package
    without such a submodule is skipped silently; a package that cannot be imported, or
    a submodule that raises while importing, raises (``DiscoveryError`` for the latter,
    naming the module). Returns the names of the receivers modules found, in order.
    """
    names = [module] if isinstance(module, str) else list(module)
    found: list[str] = []
    with _lock:
        for package in packages:
            package_module = (
                package if isinstance(package, ModuleType) else importlib.import_module(package)
            )
            if not hasattr(package_module, "__path__"):
                continue  # a plain module has no submodules to discover
            for name in names:
                full_name = f"{package_module.__name__}.{name}"
                if _import_once(full_name, optional=True):
                    found.append(full_name)
        if entry_points:
            found += _load_entry_points()
    return found


def _import_once(name: str, *, optional: bool) -> bool:
    """Import *name* unless already discovered; returns whether it exists."""
    if name in _discovered:
        return True
    try:
        _discovered[name] = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if optional and error.name == name:
            return False  # no such submodule: nothing to discover here
        raise DiscoveryError(
            f"{name} exists but importing it failed: {error}", name=name
        ) from error
    except ImportError as error:
        raise DiscoveryError(
            f"{name} exists but importing it failed: {error}", name=name
        ) from error
    return True


def _load_entry_points() -> list[str]:
    found = []
    # Imported here: reading installed distributions is slow, and only discovery needs it.
    import importlib.metadata

    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (entry_point.name, entry_point.value)
        module_name = entry_point.module
        if key not in _entry_points_loaded:
            distribution = entry_point.dist.name if entry_point.dist is not None else "?"
            try:
                _import_once(module_name, optional=False)
            except DiscoveryError as error:
                raise DiscoveryError(
                    f"The {ENTRY_POINT_GROUP} entry point {entry_point.name!r} of the "
                    f"{distribution} distribution names {module_name}, which failed to "
                    f"import: {error.__cause__}",
                    name=module_name,
                ) from error.__cause__
            _entry_points_loaded.add(key)
        found.append(module_name)
    return found
