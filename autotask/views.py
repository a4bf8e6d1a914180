"""Views for machines: the health verdict for a load balancer or a Kubernetes probe.

Include ``autotask.urls`` in the project's URLconf (see the README).
"""

from django.db import DatabaseError
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import monitor
from .conf import conf
from .db import hint_for

HEALTHY, UNHEALTHY = 200, 503


class BadParameter(ValueError):
    pass


def _seconds(request, name):
    """Return the query parameter ``name`` as seconds >= 0, or None when absent."""
    value = request.GET.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 <= number < float("inf"):  # also rejects NaN
        raise BadParameter(f"{name} must be a number of seconds >= 0, not {value!r}")
    return number


def _flag(request, name):
    value = request.GET.get(name, "")
    if value not in ("", "0", "1", "true", "false"):
        raise BadParameter(f"{name} must be 1, 0, true or false, not {value!r}")
    return value in ("1", "true")


@never_cache
@require_GET
def health(request):
    """Answer 200 when the queue is healthy, 503 when not: the verdict of ``autotask_status``.

    Query parameters, as the command's options: ``max_wait`` and
    ``worker_timeout`` (seconds), ``no_worker_check=1``.
    """
    try:
        options = {
            "max_wait": _seconds(request, "max_wait"),
            "worker_timeout": _seconds(request, "worker_timeout"),
            "require_worker": not _flag(request, "no_worker_check"),
        }
    except BadParameter as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    try:
        verdict = monitor.health(using=conf.DATABASE, **options)
    except DatabaseError as exc:
        # Unhealthy, not an error page: the probe must see the queue is down.
        problem = f"cannot read the task tables: {exc}{hint_for(exc)}"
        return JsonResponse({"healthy": False, "problems": [problem]}, status=UNHEALTHY)
    return JsonResponse(verdict, status=HEALTHY if verdict["healthy"] else UNHEALTHY)
