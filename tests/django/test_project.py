"""The tests in tests/django/project/, against a real Django project with the app
installed, run in a pytest process of their own: Django is set up once per process, and
the switch must not reach the rest of tocsin's suite (nor another Django project's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("django")

ROOT = Path(__file__).resolve().parents[2]


def test_the_django_project_tests_pass():
    env = dict(os.environ, TOCSIN_DJANGO_PROJECT_TESTS="1")
    done = subprocess.run(
        # pytest-django, when installed, would bring its own settings and database rules.
        [sys.executable, "-m", "pytest", "-q", "-p", "no:django", "-p", "no:cacheprovider",
         "tests/django/project"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
    assert done.returncode == 0, f"{summary[0]}\n{done.stdout[-20000:]}\n{done.stderr[-5000:]}"
    assert " passed" in summary[0]
