"""The Django admin for tasks, schedules, paused queues and workers: read-mostly, with explicit actions.

Task and schedule pages are read-only for everyone (a task row is the
workers' bookkeeping, not a form); the actions and the buttons on a task's
page are the only way to change anything, and they need the model's change
(or delete) permission, so the view permission alone gives a read-only
admin.  Every change is written to the admin's history (LogEntry).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import dashboard, monitor, serialization
from .conf import conf
from .db import get_ops, notify_stop
from .exceptions import InvalidQueueName, NotADeclaredTask
from .maintenance import pauses
from .models import PausedQueue, Schedule, TaskQueue, Worker, Workflow
from .task import CANCELLED, DONE, ERROR, FINISHED, HELD, RUNNING, STATUS_NAMES, WAITING
from .timeutil import parse_iso

MAX_SHOWN_CHARS = 100_000  # characters of one payload shown on a task's page
RAW_SHOWN_CHARS = 2_000  # characters of an undecodable payload shown beside the note
SUMMARY_ROWS = 10  # workers / schedules listed in the summary above the task list
# The list fits 1280 px without scrolling sideways: long values are cut to
# these many characters, the whole value in the cell's tooltip.
FUNCTION_CHARS = 48
ERROR_CHARS = 60
STEPS_SHOWN = 1_000  # steps listed on a workflow's page (the list of its steps shows them all)
TOOLTIP_CHARS = 1_000  # of an error message, in the excerpt's tooltip
# Times to the second (tasks often run in milliseconds), ISO 8601 whatever the language.
DATE_FORMAT = "%Y-%m-%d"
TIME_FORMAT = "%H:%M:%S"
STATUS_CLASSES = {
    WAITING: "waiting",
    RUNNING: "running",
    DONE: "done",
    ERROR: "error",
    CANCELLED: "cancelled",
    HELD: "held",
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
        more = len(text) - MAX_SHOWN_CHARS
        text = (
            text[:MAX_SHOWN_CHARS]
            + "\n… "
            + gettext("(%(count)d more characters not shown)") % {"count": more}
        )
    return format_html('<pre class="autotask-json">{}</pre>', text)


def _undecodable(what, text, exc):
    raw = text if len(text) <= RAW_SHOWN_CHARS else text[:RAW_SHOWN_CHARS] + " …"
    return format_html(
        '<p class="errornote">{}</p><pre class="autotask-json">{}</pre>', what % {"error": exc}, raw
    )


def pretty_call(text):
    """Render stored call arguments as pretty JSON (a note, never an error, when corrupt)."""
    try:
        args, kwargs = serialization.decode_call(text)
    except Exception as exc:  # noqa: BLE001 - a corrupt payload (pickle may raise anything) is shown, not raised
        return _undecodable(gettext("The stored arguments cannot be decoded: %(error)s"), text, exc)
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
        return _undecodable(gettext("The stored result cannot be decoded: %(error)s"), text, exc)
    return _pretty(_jsonable(value))


def _preformatted(text):
    return format_html('<pre class="autotask-traceback">{}</pre>', text) if text else "-"


def seconds(value):
    """Render a datetime to the second in the current time zone, the exact instant in its tooltip.

    The date and the time may go on two lines, so that a narrow column fits.
    """
    if value is None:
        return "-"
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}"><span class="autotask-nowrap">{}</span> '
        '<span class="autotask-nowrap">{}</span></time>',
        value.isoformat(),
        value.isoformat(sep=" "),
        value.strftime(DATE_FORMAT),
        value.strftime(TIME_FORMAT),
    )


def _time_column(field, description):
    """A column (or read-only field) showing the datetime ``field`` to the second."""

    @admin.display(description=description, ordering=field)
    def show(model_admin, obj):
        return seconds(getattr(obj, field))

    return show


class ReadOnlyMixin:
    """Pages show a row; only actions change anything."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # obj given: the object's page, always view-only.  obj None: the model
        # permission, which gates the actions and the buttons.
        return False if obj is not None else super().has_change_permission(request)


def log(request, objects, flag, message=""):
    """Write one admin history entry (LogEntry) per object, in one statement."""
    objects = list(objects)
    if objects:
        LogEntry.objects.log_actions(request.user.pk, objects, flag, change_message=str(message))


@dataclass(frozen=True)
class Button:
    """A button on a task's page: a POST to ``<id>/<slug>/`` shown when ``applies(task)``."""

    slug: str
    label: str
    help: str
    method: str  # of TaskQueueAdmin, called with (request, task); returns the URL to go to next
    applies: Callable[[TaskQueue], bool]

    def url_name(self, opts):
        return f"{opts.app_label}_{opts.model_name}_{self.slug.replace('-', '_')}"


# The buttons, in the order shown.
TASK_BUTTONS = (
    Button(
        "retry",
        _("Retry"),
        _("Put this failed task back to Waiting, due now, with a fresh attempt budget."),
        "press_retry",
        lambda task: task.status == ERROR,
    ),
    Button(
        "cancel",
        _("Cancel"),
        _("Cancel this task: no worker has started it."),
        "press_cancel",
        lambda task: task.status in (WAITING, HELD),
    ),
    Button(
        "stop",
        _("Stop"),
        _("Ask the worker running this task to stop it: it ends Cancelled, never retried."),
        "press_stop",
        lambda task: task.status == RUNNING and task.stop_requested_at is None,
    ),
    Button(
        "run-again",
        _("Run again"),
        _("Enqueue a new task with the same function, arguments and options, due now."),
        "press_run_again",
        lambda task: task.status in FINISHED,
    ),
)


@admin.register(TaskQueue)
class TaskQueueAdmin(ReadOnlyMixin, admin.ModelAdmin):
    change_list_template = "admin/autotask/taskqueue/change_list.html"
    change_form_template = "admin/autotask/taskqueue/change_form.html"
    list_display = (
        "id",
        "function_display",
        "status_display",
        "scheduled_at_display",
        "duration",
        "error_excerpt",
        "age",
    )
    list_display_links = ("id", "function_display")
    list_filter = ("status", "queue", "kind")
    search_fields = ("function",)
    search_help_text = _("Part of a function's dotted path, or a task id (42 or #42).")
    ordering = ("-id",)
    list_per_page = 100
    # The summary above the list counts per status; a second COUNT(*) of the
    # whole table on every page view is not worth its cost on large tables.
    show_full_result_count = False
    actions = ("retry_failed", "cancel_waiting", "stop_running", "run_schedule_now", "delete_finished")
    fieldsets = (
        (None, {"fields": ("id", "function", "kind", "queue", "priority", "status", "schedule")}),
        (_("Arguments"), {"fields": ("arguments",)}),
        (_("Outcome"), {"fields": ("result_display", "error_message", "traceback_display")}),
        (_("Progress"), {"fields": ("progress_display", "metadata_display", "workflow_display")}),
        (
            _("Timing"),
            {
                "fields": (
                    "created_at_display",
                    "scheduled_at_display",
                    "started_at_display",
                    "stop_requested_at_display",
                    "finished_at_display",
                    "duration",
                    "expires_at_display",
                    "ttl",
                )
            },
        ),
        (
            _("Attempts"),
            {
                "fields": (
                    "attempts",
                    "max_attempts",
                    "worker_id",
                    "lease_expires_at_display",
                    "history_display",
                    "options_display",
                )
            },
        ),
        (_("Unique"), {"fields": ("unique_key", "unique_scope")}),
        (_("Limits"), {"fields": ("concurrency_key", "concurrency_limit", "slot_display", "rate_display")}),
    )
    readonly_fields = tuple(name for _name, fieldset in fieldsets for name in fieldset["fields"])

    # -- list columns ----------------------------------------------------

    @admin.display(description=_("Function and queue"), ordering="function")
    def function_display(self, obj):
        module, _dot, name = obj.function.rpartition(".")
        if len(obj.function) > FUNCTION_CHARS:
            # Cut the module from the left: the function's own name says the most.
            keep = max(0, FUNCTION_CHARS - len(name) - 2)
            module = "…" + module[len(module) - keep :] if keep else "…"
            name = Truncator(name).chars(FUNCTION_CHARS)
        # A line may break after a dot or an underscore, never inside a word.
        name = _breakable(name, "_")
        if not module:
            shown = format_html("<strong>{}</strong>", name)
        else:
            shown = format_html(
                '<span class="autotask-module">{}.<wbr></span><strong>{}</strong>',
                _breakable(module, "."),
                name,
            )
        return format_html(
            '<span class="autotask-function" title="{}">{}</span><span class="autotask-queue">{}</span>',
            obj.function,
            shown,
            obj.queue,
        )

    @admin.display(description=_("Slot"))
    def slot_display(self, obj):
        """Where a task with a concurrency key stands: waiting for a slot, or holding one (N of the limit)."""
        if obj.concurrency_key is None:
            return "-"
        holding = monitor.slots_held(obj.concurrency_key, using=obj._state.db)
        if obj.status == HELD:
            text = gettext("Waiting for a slot: %(holding)s of %(limit)s taken")
        elif obj.status in (WAITING, RUNNING):
            text = gettext("Holds a slot: %(holding)s of %(limit)s taken")
        else:
            text = gettext("Released: %(holding)s of %(limit)s taken")
        return text % {"holding": holding, "limit": obj.concurrency_limit}

    @admin.display(description=_("Rate limit"))
    def rate_display(self, obj):
        rate = (obj.options or {}).get("rate_limit")
        if not rate:
            return "-"
        key = obj.options.get("rate_key") or obj.function
        return gettext("%(count)s starts per %(window)s s (key %(key)s)") % {
            "count": rate[0],
            "window": f"{rate[1]:g}",
            "key": key,
        }

    @admin.display(description=_("Status and attempts"), ordering="status")
    def status_display(self, obj):
        label = obj.get_status_display()
        if obj.status == RUNNING and obj.started_at is None:
            label = gettext("%(status)s (claimed ahead, not started)") % {"status": label}  # no attempt used
        elif obj.status == RUNNING and obj.stop_requested_at is not None:
            label = gettext("%(status)s (asked to stop)") % {"status": label}
        # The progress a task reported, under its status: no column of its own, so
        # that the list still fits 1280 px without scrolling sideways.
        progress = (
            format_html('<span class="autotask-progress-cell">{}</span>', progress_bar(obj.progress))
            if isinstance(obj.progress, dict)
            else ""
        )
        return format_html(
            '<span class="autotask-status autotask-{}">{}</span>'
            '<span class="autotask-attempts" title="{}">{} / {}</span>{}',
            STATUS_CLASSES.get(obj.status, "unknown"),
            label,
            gettext("Attempts started / allowed"),
            obj.attempts,
            obj.max_attempts,
            progress,
        )

    @admin.display(description=_("Duration"))
    def duration(self, obj):
        """Finished minus started: how long the last attempt ran."""
        if obj.started_at is None or obj.finished_at is None:
            return "-"
        return monitor.format_duration((obj.finished_at - obj.started_at).total_seconds())

    @admin.display(description=_("Progress"))
    def progress_display(self, obj):
        return progress_bar(obj.progress)

    @admin.display(description=_("Metadata"))
    def metadata_display(self, obj):
        return _pretty(obj.metadata) if obj.metadata else "-"

    @admin.display(description=_("Workflow"))
    def workflow_display(self, obj):
        if obj.workflow_id is None:
            return "-"
        return workflow_links(obj.workflow_id, self.admin_site.name)

    @admin.display(description=_("Error"))
    def error_excerpt(self, obj):
        if not obj.error_message:
            return ""
        first_line = obj.error_message.strip().splitlines()[0] if obj.error_message.strip() else ""
        return format_html(
            '<span class="autotask-error-excerpt" title="{}">{}</span>',
            Truncator(obj.error_message).chars(TOOLTIP_CHARS),
            Truncator(first_line).chars(ERROR_CHARS),
        )

    @admin.display(description=_("Age"), ordering="created_at")
    def age(self, obj):
        return monitor.format_age((timezone.now() - obj.created_at).total_seconds())

    created_at_display = _time_column("created_at", _("Created at"))
    scheduled_at_display = _time_column("scheduled_at", _("Scheduled at"))
    started_at_display = _time_column("started_at", _("Started at"))
    finished_at_display = _time_column("finished_at", _("Finished at"))
    expires_at_display = _time_column("expires_at", _("Expires at"))
    lease_expires_at_display = _time_column("lease_expires_at", _("Lease expires at"))
    stop_requested_at_display = _time_column("stop_requested_at", _("Stop requested at"))

    # -- the task's page -------------------------------------------------

    @admin.display(description=_("Arguments"))
    def arguments(self, obj):
        return pretty_call(obj.args)

    @admin.display(description=_("Result"))
    def result_display(self, obj):
        return pretty_value(obj.result)

    @admin.display(description=_("Traceback"))
    def traceback_display(self, obj):
        return _preformatted(obj.traceback)

    @admin.display(description=_("Options"))
    def options_display(self, obj):
        return _pretty(obj.options) if obj.options else "-"

    @admin.display(description=_("History"))
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
                    _history_time(entry.get("started_at")),
                    _history_time(entry.get("finished_at")),
                    entry.get("error") or gettext("done"),
                )
                for entry in obj.history
                if isinstance(entry, dict)
            ),
        )
        return format_html(
            '<table class="autotask-history"><thead><tr><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            gettext("Attempt"),
            gettext("Worker"),
            gettext("Started"),
            gettext("Finished"),
            gettext("Outcome"),
            rows,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        task = self.get_object(request, unquote(object_id))
        buttons = []
        if task is not None and self.has_change_permission(request):
            buttons = [
                {
                    "label": b.label,
                    "help": b.help,
                    "slug": b.slug,
                    "url": reverse(
                        f"admin:{b.url_name(self.opts)}",
                        args=[quote(task.pk)],
                        current_app=self.admin_site.name,
                    ),
                }
                for b in TASK_BUTTONS
                if b.applies(task)
            ]
        context = {**(extra_context or {}), "autotask_buttons": buttons}
        return super().change_view(request, object_id, form_url, context)

    # -- the buttons on a task's page ------------------------------------

    def get_urls(self):
        # The dashboard's and the buttons' before the admin's own: its "<object_id>/" pattern
        # would take "dashboard/".
        return [*dashboard.urls(self), *self.button_urls(), *super().get_urls()]

    def button_urls(self):
        return [
            path(
                f"<path:object_id>/{button.slug}/",
                self.admin_site.admin_view(self.press),  # staff only, CSRF-checked
                {"button": button},
                name=button.url_name(self.opts),
            )
            for button in TASK_BUTTONS
        ]

    def press(self, request, object_id, button):
        """Apply one button to one task (POST only, change permission); go back to a task's page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        task = self.get_object(request, unquote(object_id))
        if task is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return HttpResponseRedirect(getattr(self, button.method)(request, task))

    def _page(self, pk):
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_change"
        return reverse(name, args=[quote(pk)], current_app=self.admin_site.name)

    def _tell(self, request, text, task, level=messages.SUCCESS):
        self.message_user(request, text % {"id": task.pk}, level)

    def press_retry(self, request, task):
        retried, refused = self._retry(request, _one(task))
        if refused:
            self.message_user(request, _not_declared(gettext("Not retried"), refused), messages.WARNING)
        elif retried:
            self._tell(request, gettext("Retried task #%(id)s: it waits again, due now."), task)
        else:
            text = gettext("Task #%(id)s was not retried: only failed (Error) tasks are retried.")
            self._tell(request, text, task, messages.WARNING)
        return self._page(task.pk)

    def press_cancel(self, request, task):
        if self._cancel(request, _one(task)):
            self._tell(request, gettext("Cancelled task #%(id)s."), task)
        else:
            text = gettext("Task #%(id)s was not cancelled: only waiting tasks can be cancelled.")
            self._tell(request, text, task, messages.WARNING)
        return self._page(task.pk)

    def press_stop(self, request, task):
        if self._stop(request, _one(task)):
            self._tell(request, gettext("Asked the worker running task #%(id)s to stop it."), task)
        else:
            text = gettext("Task #%(id)s was not stopped: only running tasks can be stopped.")
            self._tell(request, text, task, messages.WARNING)
        return self._page(task.pk)

    def press_run_again(self, request, task):
        if not task.is_finished:
            self._tell(
                request,
                gettext("Task #%(id)s was not run again: it has not finished."),
                task,
                messages.WARNING,
            )
            return self._page(task.pk)
        alias = task._state.db
        try:
            with transaction.atomic(using=alias):
                new_pk = monitor.run_again(task, using=alias)
                new = TaskQueue.objects.using(alias).get(pk=new_pk)
                log(request, [new], ADDITION, gettext("Added: a new run of task #%(id)s.") % {"id": task.pk})
                log(request, [task], CHANGE, gettext("Ran again as task #%(id)s.") % {"id": new_pk})
        except NotADeclaredTask:
            self.message_user(
                request, _not_declared(gettext("Not run again"), {task.function}), messages.WARNING
            )
            return self._page(task.pk)
        self.message_user(
            request,
            format_html(
                gettext("Enqueued task {new}, a new run of task #{id}."),
                new=format_html('<a href="{}">#{}</a>', self._page(new_pk), new_pk),
                id=task.pk,
            ),
        )
        return self._page(new_pk)

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

    def get_actions(self, request, action_location=None):
        # Django 6.1 asks for the list's or the change form's actions; 5.2 knows only the list's.
        where = {} if action_location is None else {"action_location": action_location}
        actions = super().get_actions(request, **where)
        # Replaced by delete_finished, which never deletes a task a worker may hold.
        actions.pop("delete_selected", None)
        return actions

    def _report(self, request, done, selected, did, skipped_reason):
        """Say what an action did, and why the rest of the selection was left alone."""
        if done:
            self.message_user(request, did % {"count": done}, messages.SUCCESS)
        left = selected - done
        if left:
            level = messages.INFO if done else messages.WARNING
            text = ngettext(
                "%(count)d task was left alone: %(reason)s.",
                "%(count)d tasks were left alone: %(reason)s.",
                left,
            )
            self.message_user(request, text % {"count": left, "reason": skipped_reason}, level)

    # Each change locks the rows it is about to change (SELECT ... FOR UPDATE where the
    # database has it; SQLite has one writer), so the history names exactly those rows.

    def _retry(self, request, queryset):
        alias = queryset.db
        key_taken = []  # ids of failed tasks whose unique key another task holds: they stay failed
        with transaction.atomic(using=alias):
            ids = _locked(queryset, "failed")
            retried, refused = monitor.retry_failed_tasks(
                TaskQueue.objects.using(alias).filter(pk__in=ids), key_taken=key_taken
            )
            changed = (
                TaskQueue.objects.using(alias)
                .filter(pk__in=ids)
                .exclude(function__in=refused)
                .exclude(pk__in=key_taken)
            )
            log(
                request,
                changed.only("id", "function", "status"),
                CHANGE,
                gettext("Retried: waiting again, due now."),
            )
        if key_taken:
            text = gettext("Not retried, another task holds their unique key (they stay failed): %(ids)s.")
            self.message_user(
                request, text % {"ids": ", ".join(f"#{pk}" for pk in key_taken)}, messages.WARNING
            )
        return retried, refused

    def _cancel(self, request, queryset):
        alias = queryset.db
        with transaction.atomic(using=alias):
            ids = _locked(queryset, "not_started")
            cancelled = TaskQueue.objects.using(alias).filter(pk__in=ids).cancel_waiting(timezone.now())
            changed = TaskQueue.objects.using(alias).filter(pk__in=ids).only("id", "function", "status")
            log(request, changed, CHANGE, gettext("Cancelled while waiting."))
        return cancelled

    def _stop(self, request, queryset):
        alias = queryset.db
        with transaction.atomic(using=alias):
            ids = _locked(queryset, "running")
            asked = TaskQueue.objects.using(alias).filter(pk__in=ids).stop_running(timezone.now())
            changed = TaskQueue.objects.using(alias).filter(pk__in=ids).only("id", "function", "status")
            log(request, changed, CHANGE, gettext("Asked to stop while running."))
        if asked:
            notify_stop(alias)  # after the commit: the workers read the request at once
        return asked

    @admin.action(description=_("Stop running tasks"), permissions=["change"])
    def stop_running(self, request, queryset):
        selected = queryset.count()
        asked = self._stop(request, queryset)
        did = ngettext(
            "Asked the workers to stop %(count)d task.", "Asked the workers to stop %(count)d tasks.", asked
        )
        self._report(request, asked, selected, did, gettext("only running tasks can be stopped"))

    @admin.action(description=_("Retry failed tasks"), permissions=["change"])
    def retry_failed(self, request, queryset):
        selected = queryset.count()
        retried, refused = self._retry(request, queryset)
        did = ngettext("Retried %(count)d task.", "Retried %(count)d tasks.", retried)
        self._report(request, retried, selected, did, gettext("only failed (Error) tasks are retried"))
        if refused:
            self.message_user(request, _not_declared(gettext("Not retried"), refused), messages.WARNING)

    @admin.action(description=_("Cancel waiting tasks"), permissions=["change"])
    def cancel_waiting(self, request, queryset):
        selected = queryset.count()
        cancelled = self._cancel(request, queryset)
        did = ngettext("Cancelled %(count)d task.", "Cancelled %(count)d tasks.", cancelled)
        self._report(request, cancelled, selected, did, gettext("only waiting tasks can be cancelled"))

    @admin.action(description=_("Run the periodic/cron task now"), permissions=["change"])
    def run_schedule_now(self, request, queryset):
        schedule_ids = set(queryset.exclude(schedule=None).values_list("schedule_id", flat=True).distinct())
        schedules = list(Schedule.objects.using(queryset.db).filter(pk__in=schedule_ids))
        if not schedules:
            self.message_user(
                request, gettext("None of the selected tasks is a periodic or cron task."), messages.WARNING
            )
            return
        _run_schedules(self, request, schedules, queryset.db)

    @admin.action(description=_("Delete finished tasks"), permissions=["delete"])
    def delete_finished(self, request, queryset):
        selected = queryset.count()
        alias = queryset.db
        with transaction.atomic(using=alias):
            ids = _locked(queryset, "finished")
            doomed = TaskQueue.objects.using(alias).filter(pk__in=ids)
            log(request, doomed.only("id", "function", "status"), DELETION)  # before: the rows go
            deleted = doomed.delete_finished()
        did = ngettext("Deleted %(count)d task.", "Deleted %(count)d tasks.", deleted)
        self._report(
            request,
            deleted,
            selected,
            did,
            gettext("only finished (Done, Error, Cancelled) tasks are deleted"),
        )

    # -- the summary above the list --------------------------------------

    def changelist_view(self, request, extra_context=None):
        # Lazy: computed only when the page is rendered (not for a redirect
        # after an action or a refused permission).
        summary = SimpleLazyObject(lambda: self.summary(request))
        return super().changelist_view(request, {**(extra_context or {}), "autotask_summary": summary})

    def summary(self, request):
        """Return the template context of the summary above the task list."""
        snap = monitor.snapshot(using=self.get_queryset(request).db, with_limits=False)
        changelist = reverse("admin:autotask_taskqueue_changelist", current_app=self.admin_site.name)
        totals = snap.totals
        statuses = [
            {
                "name": str(label),
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


def progress_bar(progress):
    """A task's progress: a bar when its total is known, and its figures and message."""
    if not isinstance(progress, dict):
        return "-"
    done, total, message = progress.get("done"), progress.get("total"), progress.get("message") or ""
    figures = f"{done:g} / {total:g}" if isinstance(total, int | float) else f"{done}"
    bar = ""
    if isinstance(total, int | float) and isinstance(done, int | float) and total > 0:
        bar = format_html(
            '<progress class="autotask-progress" max="{}" value="{}">{}%</progress> ',
            total,
            min(done, total),
            round(100 * min(done, total) / total),
        )
    return format_html(
        '{}<span class="autotask-progress-figures">{}</span> '
        '<span class="autotask-progress-message">{}</span>',
        bar,
        figures,
        Truncator(message).chars(ERROR_CHARS),
    )


def workflow_links(workflow_id, site_name="admin"):
    """Links to a workflow's page and to the list of its steps."""
    page = reverse(f"{site_name}:autotask_workflow_change", args=[workflow_id])
    steps = reverse(f"{site_name}:autotask_taskqueue_changelist") + f"?workflow__id__exact={workflow_id}"
    return format_html(
        '<a href="{}">{} #{}</a> (<a href="{}">{}</a>)',
        page,
        gettext("workflow"),
        workflow_id,
        steps,
        gettext("its steps"),
    )


def _one(task):
    """The queryset of one task row, on its database."""
    return TaskQueue.objects.using(task._state.db).filter(pk=task.pk)


def _locked(queryset, verb):
    """Lock the rows of ``queryset`` that ``verb`` selects until the transaction ends; return their ids.

    The selection goes in a subquery (the list's queryset may be one that
    FOR UPDATE refuses); the verb's condition stays on the locked rows, so
    PostgreSQL checks it again on a row that changed while it waited.
    """
    get_ops(queryset.db).reserve()  # SQLite: the write lock first, or the writes could not follow the read
    rows = TaskQueue.objects.using(queryset.db).filter(pk__in=queryset.order_by().values("pk"))
    return list(getattr(rows, verb)().order_by().select_for_update().values_list("id", flat=True))


def _breakable(text, separator):
    """Return ``text`` (escaped) with a line break allowed after each ``separator``."""
    return format_html_join(mark_safe(f"{separator}<wbr>"), "{}", ((part,) for part in text.split(separator)))


def _history_time(text):
    """An attempt's time from the history (ISO 8601 text) to the second; the text as is when unreadable."""
    try:
        return seconds(parse_iso(text)) if text else ""
    except (TypeError, ValueError):
        return text


def _not_declared(verb, names):
    return gettext(
        "%(verb)s, not a declared task (a worker refuses it): %(names)s. "
        "Declare the function with @delayed_task, @periodic_task, @cron_task or Django's @task."
    ) % {"verb": verb, "names": ", ".join(sorted(names))}


def _run_schedules(model_admin, request, schedules, using):
    missing = [s for s in schedules if s.missing]
    refused = monitor.undeclared({s.name for s in schedules if not s.missing})
    runnable = [s for s in schedules if not s.missing and s.name not in refused]
    if refused:
        model_admin.message_user(request, _not_declared(gettext("Not run"), refused), messages.WARNING)
    if runnable:
        with transaction.atomic(using=using):
            ids = monitor.run_now(runnable, using=using)
            for schedule, pk in zip(runnable, ids, strict=True):
                log(request, [schedule], CHANGE, gettext("Run now: enqueued task #%(id)s.") % {"id": pk})
            added = TaskQueue.objects.using(using).filter(pk__in=ids).only("id", "function", "status")
            log(request, added, ADDITION, gettext("Added: a run now of its periodic or cron task."))
        names = ", ".join(s.name for s in runnable)
        text = ngettext(
            "Enqueued a run now: %(names)s.", "Enqueued %(count)d runs now: %(names)s.", len(runnable)
        )
        model_admin.message_user(request, text % {"count": len(runnable), "names": names}, messages.SUCCESS)
    if missing:
        model_admin.message_user(
            request,
            gettext("Not run, the function is gone from the code: %(names)s.")
            % {"names": ", ".join(s.name for s in missing)},
            messages.WARNING,
        )


@admin.register(Schedule)
class ScheduleAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # The list shows the error shortened; the page shows it whole.
    columns = ("name", "kind", "spec", "timezone", "queue", "next_run", "last_run_at_display", "last_status")
    list_display = (*columns, "last_error_short", "missing", "paused")
    list_filter = ("kind", "missing", "paused", "queue")
    search_fields = ("name",)
    ordering = ("missing", "next_run_at", "name")
    actions = ("run_now", "pause", "resume")
    readonly_fields = (
        *columns,
        "last_error_display",
        "missing",
        "paused",
        "paused_at_display",
        "paused_by",
        "updated_at_display",
    )
    fields = readonly_fields

    last_run_at_display = _time_column("last_run_at", _("Last run at"))
    updated_at_display = _time_column("updated_at", _("Updated at"))
    paused_at_display = _time_column("paused_at", _("Paused at"))

    @admin.display(description=_("Next run at"), ordering="next_run_at")
    def next_run(self, obj):
        """The next run, flagged when it is overdue rather than upcoming."""
        shown = seconds(obj.next_run_at)
        late = monitor.overdue_by(obj, timezone.now())
        if late is None:
            return shown
        return format_html(
            '{} <strong style="color: var(--error-fg)">{}</strong>',
            shown,
            gettext("overdue by %(age)s") % {"age": monitor.format_age(late)},
        )

    @admin.display(description=_("Last error"))
    def last_error_short(self, obj):
        return Truncator(obj.last_error).chars(80) if obj.last_error else ""

    @admin.display(description=_("Last error"))
    def last_error_display(self, obj):
        return _preformatted(obj.last_error)

    @admin.action(description=_("Run now"), permissions=["change"])
    def run_now(self, request, queryset):
        _run_schedules(self, request, list(queryset), queryset.db)

    @admin.action(description=_("Pause (no run is enqueued until resumed)"), permissions=["change"])
    def pause(self, request, queryset):
        by = _who(request)
        changed = [s for s in queryset if pauses.pause_schedule(s.name, using=queryset.db, by=by)]
        log(request, changed, CHANGE, gettext("Paused."))
        _report_pauses(self, request, gettext("Paused"), changed, queryset.count(), gettext("already paused"))

    @admin.action(description=_("Resume (next run: the next occurrence from now)"), permissions=["change"])
    def resume(self, request, queryset):
        changed = [s for s in queryset if pauses.resume_schedule(s.name, using=queryset.db)]
        log(request, changed, CHANGE, gettext("Resumed."))
        _report_pauses(self, request, gettext("Resumed"), changed, queryset.count(), gettext("not paused"))


def _who(request):
    """Who pauses, as stored with the pause."""
    user = getattr(request, "user", None)
    return f"admin ({user.get_username()})" if user is not None and user.is_authenticated else "admin"


def _report_pauses(model_admin, request, did, schedules, selected, skipped_reason):
    if schedules:
        names = ", ".join(s.name for s in schedules)
        model_admin.message_user(request, f"{did}: {names}.", messages.SUCCESS)
    left = selected - len(schedules)
    if left:
        text = gettext("%(count)d left alone: %(reason)s.") % {"count": left, "reason": skipped_reason}
        model_admin.message_user(request, text, messages.INFO)


class PausedQueueForm(forms.ModelForm):
    class Meta:
        model = PausedQueue
        fields = ("name",)

    def clean_name(self):
        try:
            return pauses.check_queue_name(self.cleaned_data["name"])
        except InvalidQueueName as exc:
            raise ValidationError(str(exc)) from exc


@admin.register(PausedQueue)
class PausedQueueAdmin(admin.ModelAdmin):
    """Adding a row pauses a queue, deleting it resumes the queue (and wakes its workers)."""

    form = PausedQueueForm
    list_display = ("name", "paused_at_display", "paused_by", "waiting")
    search_fields = ("name",)

    def get_fields(self, request, obj=None):
        return ("name",) if obj is None else ("name", "paused_at_display", "paused_by", "waiting")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("name", "paused_at_display", "paused_by", "waiting")

    paused_at_display = _time_column("paused_at", _("Paused at"))

    def has_change_permission(self, request, obj=None):
        # A pause is added or deleted, never edited: its page is read-only.
        return False if obj is not None else super().has_change_permission(request)

    @admin.display(description=_("Waiting tasks"))
    def waiting(self, obj):
        return TaskQueue.objects.using(obj._state.db).waiting().filter(queue=obj.name).count()

    def save_model(self, request, obj, form, change):
        using = obj._state.db or conf.DATABASE
        if not pauses.pause_queue(obj.name, using=using, by=_who(request)):
            text = gettext("The queue %(name)s was already paused.") % {"name": obj.name}
            self.message_user(request, text, messages.INFO)
        elif pauses.unknown_queues([obj.name], using=using):
            self.message_user(
                request,
                gettext(
                    "No waiting task, schedule or worker uses the queue %(name)s: it is paused ahead "
                    "of time (check the name for a typo)."
                )
                % {"name": obj.name},
                messages.WARNING,
            )
        obj.pk = PausedQueue.objects.using(using).get(name=obj.name).pk

    def delete_model(self, request, obj):
        pauses.resume_queue(obj.name, using=obj._state.db)

    def delete_queryset(self, request, queryset):
        for name in queryset.values_list("name", flat=True):
            pauses.resume_queue(name, using=queryset.db)


@admin.register(Worker)
class WorkerAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # The list and the page show the same columns, all read-only.
    list_display = readonly_fields = fields = (
        "worker_id",
        "hostname",
        "pid",
        "queues",
        "concurrency",
        "started_at_display",
        "last_seen_display",
        "alive",
    )
    search_fields = ("worker_id", "hostname")
    ordering = ("-last_seen",)

    started_at_display = _time_column("started_at", _("Started at"))
    last_seen_display = _time_column("last_seen", _("Last seen"))

    @admin.display(description=_("Alive"), boolean=True)
    def alive(self, obj):
        return obj.last_seen >= monitor.alive_after(timezone.now())

    def has_delete_permission(self, request, obj=None):
        # Rows are the workers' own heartbeats; a worker deletes its row on exit.
        return False


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Workflows (chains, groups, callbacks): the list, and each one's steps together on its page."""

    list_display = (
        "id",
        "name",
        "status",
        "stage_display",
        "remaining",
        "failed",
        "created_at_display",
        "steps_link",
    )
    list_filter = ("status",)
    search_fields = ("name",)
    ordering = ("-id",)
    fields = readonly_fields = (
        "id",
        "name",
        "status",
        "stage_display",
        "remaining",
        "failed",
        "error_message",
        "created_at_display",
        "finished_at_display",
        "expires_at_display",
        "steps_display",
    )
    actions = ("cancel_workflows",)

    created_at_display = _time_column("created_at", _("Created at"))
    finished_at_display = _time_column("finished_at", _("Finished at"))
    expires_at_display = _time_column("expires_at", _("Expires at"))

    @admin.display(description=_("Stage"))
    def stage_display(self, obj):
        return f"{obj.stage + 1} / {len(obj.stages)}"

    @admin.display(description=_("Steps"))
    def steps_link(self, obj):
        return workflow_links(obj.pk, self.admin_site.name)

    @admin.display(description=_("Steps"))
    def steps_display(self, obj):
        """Every stage with its steps: a task's status and link once enqueued, else "pending" or "not run"."""
        tasks = {}
        shown = TaskQueue.objects.using(obj._state.db).filter(workflow_id=obj.pk).order_by("id")
        for pk, function, status, options, progress in shown.values_list(
            "pk", "function", "status", "options", "progress"
        )[:STEPS_SHOWN]:
            tasks.setdefault(options.get("workflow", [None, 0])[1], []).append(
                (pk, function, status, progress)
            )
        later = gettext("pending") if obj.status == RUNNING else gettext("not run")
        site = self.admin_site.name
        rows = []
        for index, stage in enumerate(obj.stages):
            if index in tasks:
                for pk, function, status, progress in tasks[index]:
                    link = reverse(f"{site}:autotask_taskqueue_change", args=[pk])
                    rows.append(
                        format_html(
                            '<tr><td>{}</td><td><a href="{}">#{}</a> {}</td>'
                            '<td><span class="autotask-status autotask-{}">{}</span></td><td>{}</td></tr>',
                            index + 1,
                            link,
                            pk,
                            function,
                            STATUS_CLASSES.get(status, "unknown"),
                            STATUS_NAMES.get(status, status),
                            progress_bar(progress),
                        )
                    )
            else:
                for spec in stage.get("steps") or [{"function": "?"}] * stage.get("size", 0):
                    rows.append(
                        format_html(
                            "<tr><td>{}</td><td>{}</td><td>{}</td><td></td></tr>",
                            index + 1,
                            spec["function"],
                            later,
                        )
                    )
        return format_html(
            '<table class="autotask-history"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            gettext("Stage"),
            gettext("Step"),
            gettext("Status"),
            gettext("Progress"),
            mark_safe("".join(rows)),  # each row built by format_html
        )

    @admin.action(description=_("Cancel selected running workflows"), permissions=["change"])
    def cancel_workflows(self, request, queryset):
        with transaction.atomic(using=queryset.db):
            get_ops(queryset.db).reserve()
            running = list(queryset.filter(status=RUNNING).select_for_update())
            cancelled = Workflow.objects.using(queryset.db).filter(pk__in=[w.pk for w in running]).cancel()
            log(request, running, CHANGE, gettext("Cancelled"))
        self.message_user(
            request, ngettext("%d workflow cancelled.", "%d workflows cancelled.", cancelled) % cancelled
        )

    def has_delete_permission(self, request, obj=None):
        return False
