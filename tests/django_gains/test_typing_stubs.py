"""The typed Django signals, checked again with django-stubs (tests/test_typing.py checks
them without): mypy --strict and pyright strict on tests/typing/django_builtins.py and
tests/typing_django/, with the stubs from ``make django-stubs`` (in .tools/django-stubs).

The stubs are put on the checkers' search path under the name ``django`` (a directory of
``.pyi`` files there shadows Django's untyped source), so the project's environment
stays without them, as the rest of the suite expects.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / ".tools" / "django-stubs"
PYRIGHT = ROOT / ".tools" / "node_modules" / ".bin" / "pyright"
FILES = [
    ROOT / "tests" / "typing" / "django_builtins.py",
    *(ROOT / "tests" / "typing_django").glob("*.py"),
]
MARKER = re.compile(r"#\s*E:(.*)$")


def stub_path(tmp_path: Path) -> Path:
    if not (STUBS / "django-stubs").is_dir():
        reason = f"django-stubs is not installed in {STUBS} (run `make django-stubs`)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    path = tmp_path / "stubs"
    path.mkdir()
    (path / "django").symlink_to(STUBS / "django-stubs")
    (path / "django_stubs_ext").symlink_to(STUBS / "django_stubs_ext")
    return path


def expected(checker: str) -> dict[tuple[str, int], set[str]]:
    marks = {}
    for path in FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            marker = MARKER.search(line)
            if marker:
                marks[(path.name, number)] = set(re.findall(rf"{checker}\[([\w-]+)\]", marker[1]))
    return marks


def check(checker: str, found: dict[tuple[str, int], set[str]]) -> None:
    wanted = expected(checker)
    assert set(found) == set(wanted), f"{checker}: found {found}, marked {wanted}"
    for where, codes in wanted.items():
        assert codes <= found[where], (checker, where, codes, found[where])


def test_mypy_with_django_stubs(tmp_path: Path) -> None:
    stubs = stub_path(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir=/dev/null",
            "--python-version=3.11",
            "--no-error-summary",
            "--show-error-codes",
            "--config-file=",
            *map(str, FILES),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "MYPYPATH": f"{ROOT / 'src'}{os.pathsep}{stubs}"},
    )
    found: dict[tuple[str, int], set[str]] = {}
    ours = {path.resolve() for path in FILES}
    for line in result.stdout.splitlines():
        match = re.match(r"(.+?):(\d+): error: .*\[([\w-]+)\]$", line)
        # The stubs, checked as sources on MYPYPATH, have complaints of their own.
        if match and (ROOT / match[1]).resolve() in ours:
            found.setdefault((Path(match[1]).name, int(match[2])), set()).add(match[3])
    assert "django" not in result.stderr, result.stderr
    check("mypy", found)


def test_pyright_with_django_stubs(tmp_path: Path) -> None:
    stubs = stub_path(tmp_path)
    if not PYRIGHT.exists() or shutil.which("node") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pyright is missing: run `make typecheck-pyright` once")
        pytest.skip("pyright is not installed in .tools (run `make typecheck-pyright` once)")
    config = tmp_path / "pyrightconfig.json"
    config.write_text(
        json.dumps(
            {
                "typeCheckingMode": "strict",
                "pythonVersion": "3.11",
                "extraPaths": [str(ROOT / "src"), str(stubs)],
                "reportUnusedFunction": "none",
            }
        )
    )
    result = subprocess.run(
        [
            str(PYRIGHT),
            "--outputjson",
            "--project",
            str(config),
            "--pythonpath",
            sys.executable,
            *map(str, FILES),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    found: dict[tuple[str, int], set[str]] = {}
    for diagnostic in json.loads(result.stdout)["generalDiagnostics"]:
        if diagnostic["severity"] == "error":
            where = (Path(diagnostic["file"]).name, diagnostic["range"]["start"]["line"] + 1)
            found.setdefault(where, set()).add(diagnostic.get("rule", diagnostic["message"]))
    check("pyright", found)
