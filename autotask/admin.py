"""The Django admin for tasks, schedules and workers: read-mostly, with explicit actions.

Task and schedule pages are read-only for everyone (a task row is the
workers' bookkeeping, not a form); the actions are the only way to change
anything, and they need the model's change (or delete) permission, so the
view permission alone gives a read-only admin.
"""

import json

from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_field
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from . import monitor, serialization
from .models import Schedule, TaskQueue, Worker
from .task import CANCELLED, DONE, ERROR, RUNNING, STATUS_NAMES, WAITING

MAX_SHOWN_CHARS = 100_000  # characters of one payload shown on a task's page
RAW_SHOWN_CHARS = 2_000  # characters of an undecodable payload shown beside the note
SUMMARY_ROWS = 10  # workers / schedules listed in the summary above the task list
STATUS_CLASSES = {
    WAITING: "waiting",
    RUNNING: "running",
    DONE: "done",
    ERROR: "error",
    CANCELLED: "cancelled",
}


def _jsonable(value):
    """Return the JSON tree the codec would store, or the repr of what it cannot."""
    try:
        return serialization.to_jsonable(value)
    except TypeError:  # SerializationError: a pickled value the JSON codec cannot show
        return {"repr": repr(value)}


def _pretty(tree):
    text = json.dumps(tree, indent=2, ensure_ascii=False, sort_keys=False, allow_nan=True)
    if len(text) > MAX_SHOWN_CHARS:
        text = text[:MAX_SHOWN_CHARS] + f"\n… ({len(text) - MAX_SHOWN_CHARS} more characters not shown)"
    return format_html('<pre class="autotask-json">{}</pre>', text)


def _undecodable(what, text, exc):
    raw = text if len(text) <= RAW_SHOWN_CHARS else text[:RAW_SHOWN_CHARS] + " …"
    return format_html(
        '<p class="errornote">The stored {} cannot be decoded: {}</p><pre class="autotask-json">{}</pre>',
        what,
        exc,
        raw,
    )


def pretty_call(text):
    """Render stored call arguments as pretty JSON (a note, never an error, when corrupt)."""
    try:
        args, kwargs = serialization.decode_call(text)
    except Exception as exc:  # noqa: BLE001 - a corrupt payload (pickle may raise anything) is shown, not raised
        return _undecodable("arguments", text, exc)
    return _pretty(
        {"args": [_jsonable(a) for a in args], "kwargs": {k: _jsonable(v) for k, v in kwargs.items()}}
    )


def pretty_value(text):
    """Render a stored return value as pretty JSON (a note, never an error, when corrupt)."""
    if text is None:
        return "-"
    try:
        value = serialization.decode_value(text)
    except Exception as exc:  # noqa: BLE001 - see pretty_call
        return _undecodable("result", text, exc)
    return _pretty(_jsonable(value))


def _preformatted(text):
    return format_html('<pre class="autotask-traceback">{}</pre>', text) if text else "-"


class ReadOnlyMixin:
    """Pages show a row; only actions change anything."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # obj given: the object's page, always view-only.  obj None: the model
        # permission, which gates the actions.
        return False if obj is not None else super().has_change_permission(request)


@admin.register(TaskQueue)
class TaskQueueAdmin(ReadOnlyMixin, admin.ModelAdmin):
    change_list_template = "admin/autotask/taskqueue/change_list.html"
    list_display = (
        "id",
        "function_display",
        "queue",
        "kind",
        "scheduled_at",
        "status_display",
        "attempts_display",
        "age",
    )
    list_display_links = ("id", "function_display")
    list_filter = ("status", "queue", "kind")
    search_fields = ("function",)
    search_help_text = "Part of a function's dotted path, or a task id (42 or #42)."
    ordering = ("-id",)
    list_per_page = 100
    # The summary above the list counts per status; a second COUNT(*) of the
    # whole table on every page view is not worth its cost on large tables.
    show_full_result_count = False
    actions = ("retry_failed", "cancel_waiting", "run_schedule_now", "delete_finished")
    fieldsets = (
        (None, {"fields": ("id", "function", "kind", "queue", "priority", "status", "schedule")}),
        ("Arguments", {"fields": ("arguments",)}),
        ("Outcome", {"fields": ("result_display", "error_message", "traceback_display")}),
        (
            "Timing",
            {"fields": ("created_at", "scheduled_at", "started_at", "finished_at", "expires_at", "ttl")},
        ),
        (
            "Attempts",
            {
                "fields": (
                    "attempts",
                    "max_attempts",
                    "worker_id",
                    "lease_expires_at",
                    "history_display",
                    "options_display",
                )
            },
        ),
        ("Unique", {"fields": ("unique_key", "unique_scope")}),
    )
    readonly_fields = (
        "id",
        "function",
        "kind",
        "queue",
        "priority",
        "status",
        "schedule",
        "arguments",
        "result_display",
        "error_message",
        "traceback_display",
        "created_at",
        "scheduled_at",
        "started_at",
        "finished_at",
        "expires_at",
        "ttl",
        "attempts",
        "max_attempts",
        "worker_id",
        "lease_expires_at",
        "history_display",
        "unique_key",
        "unique_scope",
        "options_display",
    )

    # -- list columns ----------------------------------------------------

    @admin.display(description="Function", ordering="function")
    def function_display(self, obj):
        module, _, name = obj.function.rpartition(".")
        if not module:
            return format_html("<strong>{}</strong>", name)
        return format_html('<span class="autotask-module">{}.</span><strong>{}</strong>', module, name)

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj):
        label = obj.get_status_display()
        if obj.status == RUNNING and obj.started_at is None:
            label += " (claimed ahead, not started)"  # no attempt used yet
        return format_html(
            '<span class="autotask-status autotask-{}">{}</span>',
            STATUS_CLASSES.get(obj.status, "unknown"),
            label,
        )

    @admin.display(description="Attempts", ordering="attempts")
    def attempts_display(self, obj):
        return f"{obj.attempts} / {obj.max_attempts}"

    @admin.display(description="Age", ordering="created_at")
    def age(self, obj):
        return monitor.format_age((timezone.now() - obj.created_at).total_seconds())

    # -- the task's page -------------------------------------------------

    @admin.display(description="Arguments")
    def arguments(self, obj):
        return pretty_call(obj.args)

    @admin.display(description="Result")
    def result_display(self, obj):
        return pretty_value(obj.result)

    @admin.display(description="Traceback")
    def traceback_display(self, obj):
        return _preformatted(obj.traceback)

    @admin.display(description="Options")
    def options_display(self, obj):
        return _pretty(obj.options) if obj.options else "-"

    @admin.display(description="History")
    def history_display(self, obj):
        if not obj.history:
            return "-"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    entry.get("attempt", ""),
                    entry.get("worker_id", ""),
                    entry.get("started_at", ""),
                    entry.get("finished_at", ""),
                    entry.get("error") or "done",
                )
                for entry in obj.history
                if isinstance(entry, dict)
            ),
        )
        return format_html(
            '<table class="autotask-history"><thead><tr><th>Attempt</th><th>Worker</th>'
            "<th>Started</th><th>Finished</th><th>Outcome</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    # -- search ----------------------------------------------------------

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip().lstrip("#")
        if term.isdigit():
            results |= queryset.filter(pk=int(term))
        return results, may_have_duplicates

    # -- permissions and actions -----------------------------------------

    def has_delete_permission(self, request, obj=None):
        # A waiting or running task is cancelled, not deleted: a worker may hold it.
        if obj is not None and not obj.is_finished:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Replaced by delete_finished, which never deletes a task a worker may hold.
        actions.pop("delete_selected", None)
        return actions

    def _report(self, request, done, selected, did, skipped_reason):
        """Say what an action did, and why the rest of the selection was left alone."""
        if done:
            self.message_user(request, f"{did} {_tasks(done)}.", messages.SUCCESS)
        left = selected - done
        if left:
            verb = "was" if left == 1 else "were"
            level = messages.INFO if done else messages.WARNING
            self.message_user(request, f"{_tasks(left)} {verb} left alone: {skipped_reason}.", level)

    @admin.action(description="Retry failed tasks", permissions=["change"])
    def retry_failed(self, request, queryset):
        selected = queryset.count()
        key_taken = []  # ids of failed tasks whose unique key another task holds
        retried, refused = monitor.retry_failed_tasks(queryset, key_taken=key_taken)
        self._report(request, retried, selected, "Retried", "only failed (Error) tasks are retried")
        if key_taken:
            self.message_user(
                request,
                f"Not retried, another task holds their unique key (they stay failed): "
                f"{', '.join(f'#{pk}' for pk in key_taken)}.",
                messages.WARNING,
            )
        if refused:
            self.message_user(request, _not_declared("Not retried", refused), messages.WARNING)

    @admin.action(description="Cancel waiting tasks", permissions=["change"])
    def cancel_waiting(self, request, queryset):
        selected = queryset.count()
        cancelled = queryset.cancel_waiting(timezone.now())
        self._report(request, cancelled, selected, "Cancelled", "only waiting tasks can be cancelled")

    @admin.action(description="Run the periodic/cron task now", permissions=["change"])
    def run_schedule_now(self, request, queryset):
        schedule_ids = set(queryset.exclude(schedule=None).values_list("schedule_id", flat=True).distinct())
        schedules = list(Schedule.objects.using(queryset.db).filter(pk__in=schedule_ids))
        if not schedules:
            self.message_user(
                request, "None of the selected tasks is a periodic or cron task.", messages.WARNING
            )
            return
        _run_schedules(self, request, schedules, queryset.db)

    @admin.action(description="Delete finished tasks", permissions=["delete"])
    def delete_finished(self, request, queryset):
        selected = queryset.count()
        deleted = queryset.delete_finished()
        self._report(
            request, deleted, selected, "Deleted", "only finished (Done, Error, Cancelled) tasks are deleted"
        )

    # -- the summary above the list --------------------------------------

    def changelist_view(self, request, extra_context=None):
        # Lazy: computed only when the page is rendered (not for a redirect
        # after an action or a refused permission).
        summary = SimpleLazyObject(lambda: self.summary(request))
        return super().changelist_view(request, {**(extra_context or {}), "autotask_summary": summary})

    def summary(self, request):
        """Return the template context of the summary above the task list."""
        snap = monitor.snapshot(using=self.get_queryset(request).db)
        changelist = reverse("admin:autotask_taskqueue_changelist", current_app=self.admin_site.name)
        totals = snap.totals
        statuses = [
            {
                "name": label,
                "count": totals.get(STATUS_NAMES[value], 0),
                "class": STATUS_CLASSES[value],
                "url": f"{changelist}?status__exact={value}",
            }
            for value, label in TaskQueue._meta.get_field("status").choices
        ]
        oldest = snap.oldest_waiting
        if oldest:
            oldest = {
                **oldest,
                "age_text": monitor.format_age(oldest["age"]),
                "url": reverse(
                    "admin:autotask_taskqueue_change", args=[oldest["id"]], current_app=self.admin_site.name
                ),
            }
        alive = snap.workers_alive
        return {
            "statuses": statuses,
            "oldest_waiting": oldest,
            "failures_last_hour": snap.failures_last_hour,
            "workers_alive": alive[:SUMMARY_ROWS],
            "workers_alive_count": len(alive),
            "workers_total": len(snap.workers),
            "worker_timeout": monitor.format_age(snap.worker_timeout),
            "schedules": [
                {**sch, "overdue_text": sch["overdue"] and monitor.format_age(sch["overdue_seconds"])}
                for sch in snap.schedules[:SUMMARY_ROWS]
            ],
            "schedules_more": max(0, snap.schedules_total - SUMMARY_ROWS),
            "schedules_url": reverse("admin:autotask_schedule_changelist", current_app=self.admin_site.name),
        }


def _tasks(count):
    return f"{count} task" if count == 1 else f"{count} tasks"


def _not_declared(verb, names):
    return (
        f"{verb}, not a declared task (a worker refuses it): {', '.join(sorted(names))}. "
        "Declare the function with @delayed_task, @periodic_task, @cron_task or Django's @task."
    )


def _run_schedules(model_admin, request, schedules, using):
    missing = [s for s in schedules if s.missing]
    refused = monitor.undeclared({s.name for s in schedules if not s.missing})
    runnable = [s for s in schedules if not s.missing and s.name not in refused]
    if refused:
        model_admin.message_user(request, _not_declared("Not run", refused), messages.WARNING)
    if runnable:
        monitor.run_now(runnable, using=using)
        names = ", ".join(s.name for s in runnable)
        runs = "a run" if len(runnable) == 1 else f"{len(runnable)} runs"
        model_admin.message_user(request, f"Enqueued {runs} now: {names}.", messages.SUCCESS)
    if missing:
        model_admin.message_user(
            request,
            "Not run, the function is gone from the code: " + ", ".join(s.name for s in missing) + ".",
            messages.WARNING,
        )


@admin.register(Schedule)
class ScheduleAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # The list shows the error shortened; the page shows it whole.
    columns = ("name", "kind", "spec", "timezone", "queue", "next_run_at", "last_run_at", "last_status")
    list_display = (*columns[:5], "next_run", *columns[6:], "last_error_short", "missing")
    list_filter = ("kind", "missing", "queue")
    search_fields = ("name",)
    ordering = ("missing", "next_run_at", "name")
    actions = ("run_now",)
    readonly_fields = (*columns, "last_error_display", "missing", "updated_at")
    fields = readonly_fields

    @admin.display(description="Next run at", ordering="next_run_at")
    def next_run(self, obj):
        """The next run, flagged when it is overdue rather than upcoming."""
        shown = display_for_field(obj.next_run_at, Schedule._meta.get_field("next_run_at"), "-")
        late = monitor.overdue_by(obj, timezone.now())
        if late is None:
            return shown
        return format_html(
            '{} <strong style="color: var(--error-fg)">overdue by {}</strong>',
            shown,
            monitor.format_age(late),
        )

    @admin.display(description="Last error")
    def last_error_short(self, obj):
        return Truncator(obj.last_error).chars(80) if obj.last_error else ""

    @admin.display(description="Last error")
    def last_error_display(self, obj):
        return _preformatted(obj.last_error)

    @admin.action(description="Run now", permissions=["change"])
    def run_now(self, request, queryset):
        _run_schedules(self, request, list(queryset), queryset.db)


@admin.register(Worker)
class WorkerAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # The list and the page show the same columns, all read-only.
    list_display = readonly_fields = fields = (
        "worker_id",
        "hostname",
        "pid",
        "queues",
        "concurrency",
        "started_at",
        "last_seen",
        "alive",
    )
    search_fields = ("worker_id", "hostname")
    ordering = ("-last_seen",)

    @admin.display(description="Alive", boolean=True)
    def alive(self, obj):
        return obj.last_seen >= monitor.alive_after(timezone.now())

    def has_delete_permission(self, request, obj=None):
        # Rows are the workers' own heartbeats; a worker deletes its row on exit.
        return False
