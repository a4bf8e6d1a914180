"""The dashboard in the admin: live charts of the queue, the workers and the schedules.

Two views beside the task list, behind the admin's own login and the task
model's view permission: the page, and a JSON endpoint the page's script
calls every few seconds (never while the tab is hidden) to swap in the new
figures without a reload.  The figures are ``monitor.dashboard()``'s; the
charts are drawn here as SVG (``autotask.charts``), so the page needs no
chart library and no CDN, and one renderer serves the page and its refresh.
"""

from functools import partial

from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import dateformat, timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from . import charts, monitor
from .models import KIND_CHOICES, STATUS_CHOICES
from .task import STATUS_NAMES

# Seconds between refreshes.  The workers write their figures every few
# seconds; the day's points are ten minutes wide, so it is read less often.
REFRESH_SECONDS = {"hour": 5, "day": 30}
DEFAULT_WINDOW = "hour"
TIME_FORMATS = {"hour": "H:i", "day": "D H:i"}  # the charts' time labels (Django's date format)
BODY_TEMPLATE = "admin/autotask/dashboard_body.html"
# The figures name kinds and statuses as stored; the page shows the models' labels.
KIND_LABELS = dict(KIND_CHOICES)
STATUS_LABELS = {STATUS_NAMES[value]: label for value, label in STATUS_CHOICES}


def outcome_names():
    return {
        "done": _("done"),
        "retried": _("retried"),
        "cancelled": _("cancelled"),
        "error": _("failed"),
    }


def urls(model_admin):
    """Return the dashboard's URL patterns, for ``ModelAdmin.get_urls`` (listed before the admin's own)."""
    wrap = model_admin.admin_site.admin_view  # staff only, never cached, login redirect
    info = model_admin.opts.app_label, model_admin.opts.model_name
    return [
        path("dashboard/", wrap(partial(page, model_admin)), name="{}_{}_dashboard".format(*info)),
        path("dashboard/data/", wrap(partial(data, model_admin)), name="{}_{}_dashboard_data".format(*info)),
    ]


def _allowed(model_admin, request):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied  # the admin's 403, as for the task list itself


def _window(request):
    window = request.GET.get("window", DEFAULT_WINDOW)
    return window if window in monitor.WINDOWS else None


def _bad_window(request):
    return _("window must be one of %(windows)s, not %(given)r.") % {
        "windows": ", ".join(monitor.WINDOWS),
        "given": request.GET.get("window"),
    }


def page(model_admin, request):
    """Render the dashboard page for ``?window=hour`` (the default) or ``day``."""
    _allowed(model_admin, request)
    window = _window(request)
    if window is None:
        return HttpResponseBadRequest(_bad_window(request))
    figures = monitor.dashboard(window, using=model_admin.get_queryset(request).db)
    site = model_admin.admin_site
    context = {
        **site.each_context(request),
        "title": _("Task dashboard"),
        "subtitle": None,
        "opts": model_admin.opts,
        "app_label": model_admin.opts.app_label,
        "has_view_permission": True,
        "window": window,
        "windows": [
            {"name": name, "label": label, "current": name == window}
            for name, label in (("hour", _("Last hour")), ("day", _("Last day")))
        ],
        "refresh_seconds": REFRESH_SECONDS[window],
        "refresh_seconds_by_window": REFRESH_SECONDS,
        "data_url": reverse(f"{site.name}:{_url_name(model_admin)}_data", current_app=site.name),
        "changelist_url": reverse(
            f"{site.name}:{_url_name(model_admin, 'changelist')}", current_app=site.name
        ),
        "body": body(figures, site.name),
        "updated": _clock(figures["now"]),
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/autotask/dashboard.html", context)


def data(model_admin, request):
    """Return the figures and the page's body drawn from them, as JSON, for the page's refresh."""
    _allowed(model_admin, request)
    window = _window(request)
    if window is None:
        return JsonResponse({"error": _bad_window(request)}, status=400)
    figures = monitor.dashboard(window, using=model_admin.get_queryset(request).db)
    return JsonResponse(
        {
            "figures": figures,
            "html": body(figures, model_admin.admin_site.name),
            "updated": _clock(figures["now"]),
            "refresh_seconds": REFRESH_SECONDS[window],
        }
    )


def _url_name(model_admin, view="dashboard"):
    return f"{model_admin.opts.app_label}_{model_admin.opts.model_name}_{view}"


def _local(text):
    """Return an ISO 8601 text from the figures as a datetime in the current time zone (None stays None)."""
    value = parse_datetime(text) if text else None
    if value is not None and timezone.is_aware(value):
        value = timezone.localtime(value)
    return value


def _clock(text):
    return dateformat.format(_local(text), "H:i:s")


def body(figures, site_name):
    """Return the dashboard's body (charts and tables) as HTML, for the page and its refresh."""
    return render_to_string(BODY_TEMPLATE, body_context(figures, site_name))


def body_context(figures, site_name):
    """Return the template context of the dashboard's body: the SVG charts and the tables' rows."""
    window = figures["window"]
    series = figures["series"]
    labels = [dateformat.format(_local(t), TIME_FORMATS[window]) for t in series["t"]]
    names = outcome_names()
    totals = {key: sum(series[key]) for key in names}
    span = _("in the last hour") if window == "hour" else _("in the last day")
    step = figures["step_seconds"] // 60
    per = ngettext("per minute", "per %(count)d minutes", step) % {"count": step}
    return {
        "window": window,
        "per": per,
        "span": span,
        "totals": [{"key": key, "name": name, "count": totals[key]} for key, name in names.items()],
        "throughput": charts.bar_chart(
            labels,
            [(key, name, series[key]) for key, name in names.items()],
            aria_label=_("Tasks finished %(per)s, by outcome") % {"per": per},
            empty_text=_("No task finished %(span)s.") % {"span": span},
        ),
        "failures": charts.bar_chart(
            labels,
            [(key, names[key], series[key]) for key in ("error", "retried")],
            aria_label=_("Failed and retried tasks %(per)s") % {"per": per},
            empty_text=_("No failure %(span)s.") % {"span": span},
        ),
        "pickup": _durations(labels, series, "pickup", _("Pickup latency (due to started)")),
        "run": _durations(labels, series, "run", _("Run time")),
        "depth_chart": charts.hbar_chart(
            [(row["queue"], {**row, "later": row["waiting"] - row["due"]}) for row in figures["depth"]],
            [("running", _("running")), ("due", _("due")), ("later", _("scheduled later"))],
            aria_label=_("Tasks per queue: running, due, scheduled later"),
            empty_text=_("No task is waiting or running."),
        ),
        "depth": [
            {**row, "oldest_due": monitor.format_age(row["oldest_due_seconds"])}
            if row["oldest_due_seconds"] is not None
            else {**row, "oldest_due": "-"}
            for row in figures["depth"]
        ],
        "workers": [_worker(w, site_name) for w in figures["workers"]],
        "schedules": [_schedule(s) for s in figures["schedules"]],
    }


def _durations(labels, series, measure, name):
    return charts.line_chart(
        labels,
        [("p50", "p50", series[f"{measure}_p50_ms"]), ("p95", "p95", series[f"{measure}_p95_ms"])],
        aria_label=_("%(name)s, p50 and p95") % {"name": name},
        empty_text=_("No task finished in this window."),
    )


def _label(labels, name):
    # A model choice label, through the catalogue (the models mark their labels for translation).
    return _(str(labels[name])) if name in labels else name


def _schedule(schedule):
    return {
        **schedule,
        "kind": _label(KIND_LABELS, schedule["kind"]),
        "last_status": schedule["last_status"] and _label(STATUS_LABELS, schedule["last_status"]),
        "next_run": _local(schedule["next_run_at"]),
        "last_run": _local(schedule["last_run_at"]),
    }


def _worker(worker, site_name):
    running = [
        {
            **task,
            "url": reverse(
                f"{site_name}:autotask_taskqueue_change", args=[task["id"]], current_app=site_name
            ),
            "started": _local(task["started_at"]),
        }
        for task in worker["running"]
    ]
    return {**worker, "last_seen": _local(worker["last_seen"]), "running": running}
