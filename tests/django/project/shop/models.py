from django.db import models


class Product(models.Model):  # type: ignore[misc]
    name = models.CharField(max_length=100)

    class Meta:
        app_label = "shop"


class Tag(models.Model):  # type: ignore[misc]
    label = models.CharField(max_length=30)
    products = models.ManyToManyField(Product, related_name="tags")

    class Meta:
        app_label = "shop"
