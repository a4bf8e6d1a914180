from django.contrib import admin
from django.urls import include, path

from autotask.prometheus import metrics_view
from tests.app import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("declare-schedule/", views.declare_schedule),
    path("autotask/", include("autotask.urls")),
    path("metrics/", metrics_view),
]
