"""tocsin stays dependency-free: nothing of Django (or asgiref) is imported unless used."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_importing_and_using_tocsin_imports_neither_django_nor_asgiref():
    program = textwrap.dedent(
        """
        import asyncio, sys
        import tocsin, tocsin.signals, tocsin.testing, tocsin.inspect

        signal = tocsin.Signal()

        def receiver(sender, **kwargs):
            return "sync"

        signal.connect(receiver)
        assert asyncio.run(signal.asend(sender=None)) == [(receiver, "sync")]
        print(sorted(name for name in sys.modules if name.split(".")[0] in {"django", "asgiref"}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
