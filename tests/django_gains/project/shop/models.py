"""The models the tests save, delete and send through brokers."""

from __future__ import annotations

from django.db import models


class Tag(models.Model):  # type: ignore[misc]
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "shop"


class Order(models.Model):  # type: ignore[misc]
    number = models.CharField(max_length=20)
    total = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    tags = models.ManyToManyField(Tag, blank=True)

    class Meta:
        app_label = "shop"

    def __str__(self) -> str:
        return f"Order {self.number}"


class Sku(models.Model):  # type: ignore[misc]
    """A model with a primary key that is not an integer."""

    code = models.CharField(max_length=20, primary_key=True)
    price = models.IntegerField(default=0)

    class Meta:
        app_label = "shop"
