"""A cake, saved and sent around by the demo."""

from __future__ import annotations

from django.db import models


class Cake(models.Model):  # type: ignore[misc]
    flavour = models.CharField(max_length=40)

    class Meta:
        app_label = "bakery"

    def __str__(self) -> str:
        return f"{self.flavour} cake #{self.pk}"
