"""The README's Python examples run as written, each as a script in a fresh interpreter."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example-{i}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout  # every example prints what it shows


PYPROJECT = README.parent / "pyproject.toml"
# What the README asks pip for: 'tocsin[a,b]', 'tocsin[a] @ git+...', '.[a]' in a checkout.
EXTRA_SPEC = re.compile(r"(?:\btocsin|'\.)\[([^\]]*)\]")
# The rows of the Install section's table: | `extra` | installs | for |
EXTRA_ROW = re.compile(r"^\| `([\w-]+)` \|", re.M)
PROJECT_EXTRAS = {"test", "lint", "bench", "docs"}


def extras() -> dict[str, list[str]]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return dict(project["optional-dependencies"])


def install_section() -> str:
    text = README.read_text()
    start = text.index("\n## Install\n")
    return text[start : text.index("\n## ", start + 1)]


def test_every_extra_the_readme_names_exists_and_installs_something() -> None:
    defined = extras()
    named = {
        extra.strip()
        for spec in EXTRA_SPEC.findall(README.read_text())
        for extra in spec.split(",")
    }
    assert "sqlalchemy" in named  # the pattern finds what the README says
    unknown = sorted(named - defined.keys())
    assert not unknown, f"the README names extras pyproject.toml lacks: {unknown}"
    empty = sorted(extra for extra in named if not defined[extra])
    assert not empty, f"the README offers extras that install nothing: {empty}"


def test_the_install_table_lists_every_users_extra_once() -> None:
    defined = extras()
    rows = EXTRA_ROW.findall(install_section())
    assert len(rows) == len(set(rows)), rows
    assert set(rows) == defined.keys() - PROJECT_EXTRAS
    assert all(defined[extra] for extra in rows)
