"""tests/django_gains/project/ runs in a pytest process of its own (see test_project.py)."""

import os

collect_ignore = [] if os.environ.get("TOCSIN_DJANGO_GAINS_TESTS") else ["project"]
