from django.contrib import admin
from django.urls import path

from tests.app import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("declare-schedule/", views.declare_schedule),
]
