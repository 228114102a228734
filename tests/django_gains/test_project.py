"""The tests in tests/django_gains/project/, against a real Django project with the app
installed, run in a pytest process of their own, under pytest-django as a project runs
them: Django is set up once per process, and neither its settings nor the switch must
reach the rest of tocsin's suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("django")
pytest.importorskip("pytest_django")

ROOT = Path(__file__).resolve().parents[2]


def test_the_django_gains_project_tests_pass() -> None:
    env = dict(os.environ, TOCSIN_DJANGO_GAINS_TESTS="1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        # Python 3.13's sqlite3 reports a connection that is garbage collected unclosed;
        # Django leaves one per short-lived thread (asgiref's, the worker's executor) to
        # the collector, and the suite turns warnings into errors. Only that one is let by.
        [sys.executable, "-m", "pytest", "-q", "-p", "django", "-p", "no:cacheprovider",
         "-W", "ignore:unclosed database:ResourceWarning",
         "--ds=tests.django_gains.project.settings", "tests/django_gains/project"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
    assert done.returncode == 0, f"{summary[0]}\n{done.stdout[-20000:]}\n{done.stderr[-5000:]}"
    assert " passed" in summary[0]
