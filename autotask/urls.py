"""URLs for machines: ``path("autotask/", include("autotask.urls"))`` serves ``autotask/health/``."""

from django.urls import path

from . import views

app_name = "autotask"
urlpatterns = [
    path("health/", views.health, name="health"),
]
