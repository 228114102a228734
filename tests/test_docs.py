"""Every Python example on the documentation site runs as written, each as a script in a
fresh interpreter, and every page that the navigation names exists (and the other way
round)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "generated" not in p.parts)
EXAMPLES = [
    (page, index, code)
    for page in PAGES
    for index, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))
]


def test_the_site_has_examples_in_every_part():
    parts = {page.relative_to(DOCS).parts[0] for page, _, _ in EXAMPLES}
    assert {"tutorial", "guides", "explanations", "migrating"} <= parts


@pytest.mark.parametrize(
    ("page", "code"),
    [(page, code) for page, _, code in EXAMPLES],
    ids=[f"{page.relative_to(DOCS).with_suffix('')}-{index}" for page, index, _ in EXAMPLES],
)
def test_docs_example_runs(page: Path, code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, f"{page.relative_to(ROOT)}:\n{code}\n{result.stderr}"
    assert result.stdout, f"{page.relative_to(ROOT)}: every example prints what it shows"


def test_the_navigation_names_every_page_and_only_existing_ones():
    config = (ROOT / "mkdocs.yml").read_text()
    named = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", config, re.M))
    on_disk = {str(page.relative_to(DOCS)) for page in PAGES}
    assert named == on_disk
