"""Type-level tests: mypy --strict and pyright (strict) run on the files of tests/typing/.

Each file marks the lines that must be rejected, with the error code each checker must
give there: ``# E: mypy[arg-type] pyright[reportCallIssue]``. Every other line must pass.
One mypy run and one pyright run cover the whole directory.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "typing"
FILES = sorted(EXAMPLES.glob("*.py"))
PYRIGHT = ROOT / ".tools" / "node_modules" / ".bin" / "pyright"
MARKER = re.compile(r"#\s*E:(.*)$", re.M)

Found = dict[tuple[str, int], list[str]]


def expected(checker: str) -> Found:
    marks: Found = {}
    for path in FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            marker = MARKER.search(line)
            if marker:
                codes = re.findall(rf"{checker}\[([\w-]+)\]", marker.group(1))
                if codes:
                    marks[(path.name, number)] = codes
    return marks


def compare(checker: str, found: Found) -> None:
    wanted = expected(checker)
    unexpected = {where: codes for where, codes in found.items() if where not in wanted}
    missing = {where: codes for where, codes in wanted.items() if where not in found}
    wrong = {
        where: (codes, found[where])
        for where, codes in wanted.items()
        if where in found and not set(codes) <= set(found[where])
    }
    assert not unexpected, f"{checker} rejected lines not marked: {unexpected}"
    assert not missing, f"{checker} accepted marked lines: {missing}"
    assert not wrong, f"{checker} gave other codes than marked (marked, given): {wrong}"


def test_every_example_file_marks_errors():
    assert FILES
    for path in FILES:
        assert MARKER.search(path.read_text()), path


def test_mypy_strict():
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
            "--config-file=",  # not the repo's settings (which exclude these files)
            *map(str, FILES),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT / "src")},
        timeout=300,
    )
    found: Found = collections.defaultdict(list)
    for line in result.stdout.splitlines():
        match = re.match(r"(.+?):(\d+): error: .*\[([\w-]+)\]$", line)
        if match:
            found[(Path(match[1]).name, int(match[2]))].append(match[3])
        elif ": error:" in line:
            pytest.fail(f"mypy error without a code: {line}")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    compare("mypy", found)


def test_pyright_strict(tmp_path: Path):
    if not PYRIGHT.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"pyright is missing ({PYRIGHT}): run `make typecheck-pyright` once")
        pytest.skip("pyright is not installed in .tools (run `make typecheck-pyright` once)")
    if shutil.which("node") is None:
        pytest.skip("pyright needs Node.js, which is not on PATH")
    config = tmp_path / "pyrightconfig.json"
    config.write_text(
        json.dumps(
            {
                "typeCheckingMode": "strict",
                "pythonVersion": "3.11",
                "extraPaths": [str(ROOT / "src")],
                "reportUnusedFunction": "none",  # the examples define receivers to pass around
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
    report = json.loads(result.stdout)
    found: Found = collections.defaultdict(list)
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] == "error":
            where = (Path(diagnostic["file"]).name, diagnostic["range"]["start"]["line"] + 1)
            found[where].append(diagnostic.get("rule", diagnostic["message"]))
    compare("pyright", found)
