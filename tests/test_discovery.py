"""tocsin.autodiscover: importing the modules that connect receivers, once each."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tocsin import discovery
from tocsin.discovery import DiscoveryError, autodiscover
from tocsin.inspect import describe


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty directory on sys.path; what the tests write there is forgotten after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    discovered = dict(discovery._discovered)
    loaded = set(discovery._entry_points_loaded)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]
    discovery._discovered.clear()
    discovery._discovered.update(discovered)
    discovery._entry_points_loaded.clear()
    discovery._entry_points_loaded.update(loaded)


def write(root: Path, relative: str, code: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code))


SHOP_SIGNALS = """
    from tocsin import Signal, receiver

    order_placed = Signal()
    calls = []

    @receiver(order_placed)
    def count(sender, **kwargs):
        calls.append(sender)
"""


def test_autodiscover_imports_each_packages_signals_module(project: Path) -> None:
    write(project, "shop/__init__.py", "")
    write(project, "shop/signals.py", SHOP_SIGNALS)
    write(project, "blog/__init__.py", "")  # no signals module: skipped silently

    assert autodiscover("shop", "blog", entry_points=False) == ["shop.signals"]

    shop_signals = sys.modules["shop.signals"]
    shop_signals.order_placed.send(sender="test")
    assert shop_signals.calls == ["test"]


def test_importing_twice_never_connects_twice(project: Path) -> None:
    write(project, "shop/__init__.py", "")
    write(project, "shop/signals.py", SHOP_SIGNALS)
    autodiscover("shop", entry_points=False)
    signals = sys.modules["shop.signals"]
    # Even a module dropped from sys.modules is not imported again (that would define,
    # and connect, a second copy of each receiver).
    del sys.modules["shop.signals"]
    assert autodiscover("shop", entry_points=False) == ["shop.signals"]
    assert "shop.signals" not in sys.modules
    assert len(describe(signals.order_placed).receivers) == 1


def test_another_module_name_and_module_objects(project: Path) -> None:
    write(project, "shop/__init__.py", "")
    write(project, "shop/receivers.py", SHOP_SIGNALS)
    write(project, "shop/handlers.py", "HANDLED = True\n")
    import shop  # type: ignore[import-not-found]

    found = autodiscover(shop, module=["receivers", "handlers", "missing"], entry_points=False)
    assert found == ["shop.receivers", "shop.handlers"]


def test_a_plain_module_has_nothing_to_discover(project: Path) -> None:
    write(project, "single.py", "X = 1\n")
    assert autodiscover("single", entry_points=False) == []


def test_a_signals_module_whose_own_import_fails_is_reported(project: Path) -> None:
    write(project, "shop/__init__.py", "")
    write(project, "shop/signals.py", "import no_such_dependency_here\n")
    with pytest.raises(
        DiscoveryError, match=r"shop\.signals exists but importing it failed"
    ) as info:
        autodiscover("shop", entry_points=False)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert info.value.name == "shop.signals"


def test_a_missing_package_raises_import_error(project: Path) -> None:
    with pytest.raises(ModuleNotFoundError, match="no_such_package"):
        autodiscover("no_such_package", entry_points=False)


def install_fake_distribution(root: Path, name: str, entry_points: str) -> None:
    """What pip would leave on sys.path: a dist-info directory with entry points."""
    dist_info = root / f"{name}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def test_installed_distributions_register_modules_through_entry_points(project: Path) -> None:
    write(project, "shop_plugin/__init__.py", "")
    write(project, "shop_plugin/receivers.py", SHOP_SIGNALS)
    install_fake_distribution(
        project,
        "shop_plugin",
        """
        [tocsin.receivers]
        shop = shop_plugin.receivers
        """,
    )
    assert "shop_plugin.receivers" in autodiscover()
    receivers = sys.modules["shop_plugin.receivers"]
    assert len(describe(receivers.order_placed).receivers) == 1
    autodiscover()  # again: nothing more is connected
    assert len(describe(receivers.order_placed).receivers) == 1


def test_a_broken_entry_point_names_its_distribution(project: Path) -> None:
    install_fake_distribution(
        project,
        "broken_plugin",
        """
        [tocsin.receivers]
        broken = broken_plugin_module_that_does_not_exist
        """,
    )
    with pytest.raises(DiscoveryError, match="entry point 'broken' of the broken_plugin"):
        autodiscover()
    # Packages alone can still be discovered without the entry points.
    assert autodiscover(entry_points=False) == []
