"""examples/django_project/run.py, the Django part of ``make demo``, runs and shows its
four steps (on the memory transport here: the broker URL points nowhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_django_demo(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TOCSIN_BROKER_URL": "redis://127.0.0.1:1/0",
        "DEMO_DATABASE": str(tmp_path / "demo.sqlite3"),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "django_project" / "run.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # 1: the after-commit receiver runs after the commit, not inside the transaction.
    first = out.split("2. ")[0]
    assert first.index("(committed)") < first.index("after commit: emailing the baker about lemon")
    # 2: the rolled-back save never reaches it.
    second = out.split("2. ")[1].split("3. ")[0]
    assert "post_save: burnt cake" in second
    assert "after commit" not in second
    assert "cakes in the database: ['lemon cake #1']" in second
    # 3: the worker received the cake as a model instance.
    assert "through the memory transport (no Redis answered)" in out
    assert "worker: baking chocolate cake #2 (loaded from the database: Cake)" in out
    # 4: the inspection lists the remote receiver where it is defined.
    assert "bakery.receivers.bake" in out
    assert "remote, group=bakery-oven" in out
    assert not (tmp_path / "demo.sqlite3").exists()  # the demo cleans up
