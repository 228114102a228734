"""Settings for Django's own test suite run by scripts/test-django (Django's test_sqlite,
plus a runner that records each test's outcome).

With TOCSIN_SUITE_DISPATCHER=tocsin the switch is installed here: runtests.py loads its
settings just before django.setup(), after importing (and so creating the signals of)
django.db, django.test and more, so those are switched in place, receivers and all.
"""

import os

from test_sqlite import *  # noqa: F403

TEST_RUNNER = "tocsin_suite_runner.RecordingRunner"

if os.environ.get("TOCSIN_SUITE_DISPATCHER") == "tocsin":
    import tocsin.contrib.django

    tocsin.contrib.django.install()
