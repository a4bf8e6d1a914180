from django.apps import AppConfig


class AutotaskConfig(AppConfig):
    name = "autotask"
    verbose_name = "Autotask"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Here, not at the top: Django imports apps.py before the models, and
        # both modules import them.
        from . import checks  # noqa: F401 - registers the system checks
        from .supervisor import autostart
        from .supervisor import schedules as _schedules  # noqa: F401 - stores what this process declares

        autostart()  # a worker beside this process, if it serves
