import os
from importlib import import_module

from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.app"
    label = "app"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Scheduling tests start workers that declare the schedules of the
        # modules named here (comma-separated), as a site's task modules would.
        for module in filter(None, os.environ.get("AUTOTASK_TEST_SCHEDULES", "").split(",")):
            import_module(module)
