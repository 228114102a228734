"""The layering rule of CONTRIBUTING.md, checked on the source's import graph.

Every ``import`` and ``from ... import`` in ``src/tocsin`` is read with ``ast`` (at any
depth: an import inside a function is a dependency too), and each is judged by the
layers of the importing and the imported module:

- the core (``tocsin``, ``tocsin._*``, ``tocsin.signals``) imports none of ``contrib``,
  ``remote``, ``testing``, ``pytest_plugin``, ``cli``;
- a contrib integration imports no other one, nor ``testing``/``cli``/``pytest_plugin``,
  unless ``ALLOWED`` says why;
- ``remote`` imports no contrib module, unless ``ALLOWED`` says why;
- nothing outside the core imports a private name (``_x``) from the core.

And, run for real: ``import tocsin`` loads only the standard library.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SOURCE / "tocsin"

# (importer, imported) -> why. The importer is a module; the imported, a module or a
# package prefix. An entry whose reason starts with "being removed" may be unused (its
# import is going away on another branch); any other unused entry is an error.
ALLOWED: dict[tuple[str, str], str] = {
    ("tocsin.contrib.flask", "tocsin.contrib.wsgi"): (
        "the Flask bridge is the WSGI middleware plus Flask's own hooks"
    ),
    ("tocsin.contrib.asgi", "tocsin.contrib._request"): (
        "the request view shared by the ASGI and WSGI middleware"
    ),
    ("tocsin.contrib.wsgi", "tocsin.contrib._request"): (
        "the request view shared by the ASGI and WSGI middleware"
    ),
}

FORBIDDEN_FOR_THE_CORE = (
    "tocsin.contrib",
    "tocsin.remote",
    "tocsin.testing",
    "tocsin.pytest_plugin",
    "tocsin.cli",
)
LEAVES_CONTRIB_MUST_NOT_USE = ("tocsin.testing", "tocsin.pytest_plugin", "tocsin.cli")


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # the module, or for "from m import name", m.name when that is a module
    names: tuple[str, ...]  # for "from m import a, b": the names; else ()
    line: int

    def __str__(self) -> str:
        what = (
            f"from {self.imported} import {', '.join(self.names)}"
            if self.names
            else (f"import {self.imported}")
        )
        return f"{self.importer}:{self.line}: {what}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[Import]:
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(importer, alias.name, (), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = tuple(alias.name for alias in node.names)
            found.append(Import(importer, base, names, node.lineno))
            # "from tocsin.contrib import otel" imports the module tocsin.contrib.otel.
            found += [
                Import(importer, f"{base}.{name}", (), node.lineno)
                for name in names
                if is_module(f"{base}.{name}")
            ]
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def is_core(name: str) -> bool:
    if name in ("tocsin", "tocsin.signals"):
        return True
    parts = name.split(".")
    private = parts[-1].startswith("_") and not parts[-1].startswith("__")  # not __main__
    return len(parts) == 2 and parts[0] == "tocsin" and private


def is_private_name(module: str, name: str) -> bool:
    """``_x`` but not ``__x__``, and not a private *module* (``from tocsin import _hooks``:
    the core's modules are private, their public names are for the rest of tocsin)."""
    if not name.startswith("_") or name.startswith("__"):
        return False
    return not is_module(f"{module}.{name}")


def is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def contrib_unit(name: str) -> str | None:
    """``tocsin.contrib.sqlalchemy._models`` -> ``tocsin.contrib.sqlalchemy``."""
    parts = name.split(".")
    if parts[:2] != ["tocsin", "contrib"] or len(parts) < 3:
        return None
    return ".".join(parts[:3])


def allowed(found: Import) -> bool:
    return any(
        found.importer == importer and within(found.imported, imported)
        for importer, imported in ALLOWED
    )


def violations(rule: str) -> list[str]:
    problems = []
    for found in ALL_IMPORTS:
        importer, imported = found.importer, found.imported
        if not within(imported, "tocsin"):
            continue
        if rule == "core" and is_core(importer):
            bad = any(within(imported, prefix) for prefix in FORBIDDEN_FOR_THE_CORE)
        elif rule == "contrib" and (unit := contrib_unit(importer)) is not None:
            other = contrib_unit(imported)
            bad = (other is not None and other != unit) or any(
                within(imported, prefix) for prefix in LEAVES_CONTRIB_MUST_NOT_USE
            )
        elif rule == "remote" and within(importer, "tocsin.remote"):
            bad = within(imported, "tocsin.contrib")
        elif rule == "private" and not is_core(importer) and is_core(imported):
            bad = any(is_private_name(imported, name) for name in found.names)
        else:
            continue
        if bad and not allowed(found):
            problems.append(str(found))
    return problems


ALL_IMPORTS = [found for path in sorted(PACKAGE.rglob("*.py")) for found in imports_of(path)]


def test_the_import_graph_was_read() -> None:
    # A parser that found nothing would make every rule below pass.
    pairs = {(found.importer, found.imported) for found in ALL_IMPORTS}
    assert ("tocsin.contrib.flask", "tocsin.contrib.wsgi") in pairs
    assert ("tocsin", "tocsin._dispatcher") in pairs
    assert ("tocsin.contrib.sqlalchemy._models", "tocsin.contrib.sqlalchemy._m2m") in pairs


def test_the_core_imports_no_leaf() -> None:
    assert violations("core") == []


def test_contrib_integrations_do_not_import_each_other_without_a_reason() -> None:
    assert violations("contrib") == []


def test_remote_does_not_reach_into_contrib_without_a_reason() -> None:
    assert violations("remote") == []


def test_nothing_outside_the_core_imports_its_private_names() -> None:
    assert violations("private") == []


def test_every_allowance_is_used_and_says_why() -> None:
    for (importer, imported), reason in ALLOWED.items():
        assert reason.strip(), f"{importer} -> {imported}: say why"
        if reason.startswith("being removed"):
            continue
        used = [
            found
            for found in ALL_IMPORTS
            if found.importer == importer and within(found.imported, imported)
        ]
        assert used, f"{importer} no longer imports {imported}: remove it from ALLOWED"


@pytest.mark.parametrize(
    ("importer", "source", "rule"),
    [
        ("tocsin._dispatcher", "from tocsin.testing import capture", "core"),
        ("tocsin._hooks", "def f():\n    import tocsin.remote.worker", "core"),
        ("tocsin.contrib.otel", "from tocsin.testing import signal_label", "contrib"),
        ("tocsin.contrib.jinja2", "from tocsin.contrib import flask", "contrib"),
        ("tocsin.contrib.jinja2", "from . import wsgi", "contrib"),
        ("tocsin.remote.worker", "from tocsin.contrib.sqlalchemy import _models", "remote"),
        ("tocsin.remote.worker", "from tocsin._dispatcher import _describe", "private"),
    ],
)
def test_the_checker_catches_each_kind_of_violation(
    importer: str, source: str, rule: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same checker, on one made-up module, so that the rules above cannot pass by
    # accident (a rule that never fires would look the same as a clean graph).
    relative = importer.replace(".", "/") + ".py"
    module = tmp_path / "src" / relative
    module.parent.mkdir(parents=True)
    module.write_text(source)
    for package in ("contrib", "remote"):
        (tmp_path / "src" / "tocsin" / package).mkdir(exist_ok=True)
        for real in (PACKAGE / package).glob("*.py"):
            (tmp_path / "src" / "tocsin" / package / real.name).touch()
    (tmp_path / "src" / "tocsin" / "contrib" / "sqlalchemy").mkdir(exist_ok=True)
    (tmp_path / "src" / "tocsin" / "contrib" / "sqlalchemy" / "__init__.py").touch()
    monkeypatch.setattr(sys.modules[__name__], "SOURCE", tmp_path / "src")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "src" / "tocsin")
    monkeypatch.setattr(sys.modules[__name__], "ALL_IMPORTS", imports_of(module))
    monkeypatch.setattr(sys.modules[__name__], "ALLOWED", {})

    assert violations(rule) != []


def test_import_tocsin_loads_only_the_standard_library() -> None:
    script = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import tocsin\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = json.loads(result.stdout)
    outside = [
        name
        for name in loaded
        if name.split(".")[0] not in sys.stdlib_module_names and name.split(".")[0] != "tocsin"
    ]
    assert "tocsin._dispatcher" in loaded
    assert outside == []
    assert [name for name in loaded if not is_core(name) and within(name, "tocsin")] == [
        "tocsin.discovery"
    ]
