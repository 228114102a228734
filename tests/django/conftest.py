"""tests/django/project/ runs in a pytest process of its own (see test_project.py)."""

import os

collect_ignore = [] if os.environ.get("TOCSIN_DJANGO_PROJECT_TESTS") else ["project"]
