"""The demo project's settings: SQLite in a temporary file, no services needed."""

from __future__ import annotations

import os
import tempfile

SECRET_KEY = "tocsin-demo-only"
DEBUG = False
USE_TZ = True
ROOT_URLCONF = "demo_site.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "tocsin.contrib.django",  # tocsin becomes the dispatcher; after-commit, commands
    "bakery",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "DEMO_DATABASE", os.path.join(tempfile.gettempdir(), "tocsin-django-demo.sqlite3")
        ),
    }
}
# Where remote events go: Redis when the demo finds one, else an in-process transport.
TOCSIN_BROKER_URL = os.environ.get("TOCSIN_BROKER_URL", "redis://127.0.0.1:6379/0")
LOGGING_CONFIG = None
