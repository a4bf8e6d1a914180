"""System checks for autotask's configuration."""

from django.core.checks import Error, Tags, register

from .conf import DEFAULTS, conf


@register(Tags.compatibility)
def check_settings(app_configs=None, **kwargs):
    errors = []
    numeric = (
        "WORKER_MONITOR_INTERVALL",
        "HANDLE_TASK_IDLE_TIME",
        "RETRY_DELAY",
        "CLEAN_INTERVALL",
        "LEASE_SECONDS",
    )
    for name in numeric:
        value = getattr(conf, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            errors.append(
                Error(
                    f"AUTOTASK_{name} must be a non-negative number of seconds, not {value!r}.",
                    hint=f"Set AUTOTASK_{name} to a number such as {DEFAULTS[name]} (the default).",
                    id="autotask.E001",
                )
            )
    if conf.SERIALIZER not in ("json", "pickle"):
        errors.append(
            Error(
                f"AUTOTASK_SERIALIZER must be 'json' or 'pickle', not {conf.SERIALIZER!r}.",
                hint="Remove the setting to use the JSON codec.",
                id="autotask.E002",
            )
        )
    return errors
