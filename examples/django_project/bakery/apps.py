from django.apps import AppConfig


class BakeryConfig(AppConfig):  # type: ignore[misc]
    name = "bakery"
    default_auto_field = "django.db.models.BigAutoField"
