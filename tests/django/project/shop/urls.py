from django.urls import path

from tests.django.project.shop import views

urlpatterns = [
    path("create/", views.create_product),
    path("hello/", views.hello),
]
