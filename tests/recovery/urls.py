"""Views for the server processes the supervisor tests start."""

import os

from django.http import JsonResponse
from django.urls import path

from autotask import supervisor
from tests.app import tasks


def whoami(request):
    """Return this server process's pid and the pid of the worker beside it."""
    current = supervisor.current()
    child = current.child if current is not None else None
    return JsonResponse({"pid": os.getpid(), "worker": child.pid if child and child.poll() is None else None})


def record(request, key):
    """Enqueue tests.app.tasks.record(key) from this server process."""
    tasks.record(key)
    return whoami(request)


urlpatterns = [path("whoami/", whoami), path("record/<str:key>/", record)]
