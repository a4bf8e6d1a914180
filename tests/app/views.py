"""Views of the test project."""

from django.http import HttpResponse


def declare_schedule(request):
    """Import a module with a schedule on the first request, as a site's view module would."""
    from tests.app import view_scheduled  # noqa: F401 - declares its schedule

    return HttpResponse("declared")
