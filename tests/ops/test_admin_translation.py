"""Every string the admin shows goes through translation.

A pseudo-translation wraps each translated string in ⟪…⟫; the admin's own
parts of the pages (the summary, the list's columns and cells, the actions,
the buttons, the messages, the task page's values and headings) are then
read, and nothing but data (names, numbers, times, unit symbols) may be left
outside the brackets.
"""

import gettext
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.utils import timezone, translation
from django.utils.translation import trans_real

from autotask.models import Worker
from autotask.task import CANCELLED, DONE, ERROR, RUNNING, WAITING
from tests.ops.test_admin import LIST, SCHEDULES, act, change_url, make_schedule, make_task, messages_of

pytestmark = pytest.mark.django_db

# Data may stay as it is: dotted names, ids and numbers, times, the duration and age units.
TRANSLATED = re.compile(r"⟪[^⟪⟫]*⟫")  # the innermost: a translation may hold another
DATA = re.compile(
    r"[\w-]+(\.[\w-]+)+\.?"  # a dotted path
    r"|#?\d[\w.:/-]*"  # ids, numbers, dates and times, host:pid
    r"|\b(ms|s|min|h|d)\b"  # unit symbols of durations and ages
    r"|\b(q1|h1|E1)\b",  # this test's queue, host and error message
    re.S,
)


class Pseudo(gettext.NullTranslations):
    """Wraps every translated string in ⟪…⟫."""

    def gettext(self, message):
        return f"⟪{message}⟫"

    def ngettext(self, singular, plural, n):
        return f"⟪{singular if n == 1 else plural}⟫"

    def to_language(self):
        return "en"


@pytest.fixture
def pseudo():
    translation.activate("en")
    trans_real._active.value = Pseudo()
    yield
    translation.deactivate()


class Regions(HTMLParser):
    """Collect the text (and titles and labels) inside elements matching ``selectors``.

    A selector is ``#id``, ``.class``, or ``tag.class``; text inside an
    element of class in ``skip`` (data shown as it is stored) is left out.
    """

    SKIP = {"autotask-json", "autotask-traceback", "autotask-function", "autotask-queue", "autotask-module"}
    VOID = {"br", "input", "img", "wbr", "hr", "meta", "link"}

    def __init__(self, *selectors):
        super().__init__()
        self.selectors = selectors
        self.stack = []  # (tag, inside a region, skipped)
        self.texts = []

    def _matches(self, tag, attrs):
        classes = set((attrs.get("class") or "").split())
        for selector in self.selectors:
            name, _, cls = selector.partition(".")
            if name.startswith("#") and attrs.get("id") == name[1:]:
                return True
            if cls and cls in classes and name in ("", tag):
                return True
        return False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        inside = bool(self.stack and self.stack[-1][1]) or self._matches(tag, attrs)
        skipped = bool(self.stack and self.stack[-1][2]) or bool(
            set((attrs.get("class") or "").split()) & self.SKIP
        )
        if inside and not skipped:
            for name in ("title", "aria-label", "placeholder"):
                if attrs.get(name) and tag != "time":  # a time's title is the exact instant
                    self.texts.append(attrs[name])
        if tag not in self.VOID:
            self.stack.append((tag, inside, skipped))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self.stack and self.stack[-1][1] and not self.stack[-1][2]:
            self.texts.append(data)


def leftover(text):
    """Return ``text`` without what went through translation and without data."""
    while TRANSLATED.search(text):
        text = TRANSLATED.sub(" ", text)
    return DATA.sub(" ", text)


def untranslated(html, *selectors):
    """Return the words in the regions of ``html`` that no translation went through."""
    parser = Regions(*selectors)
    parser.feed(html)
    assert parser.texts, f"nothing found in {selectors}"
    left = [leftover(text) for text in parser.texts]
    return sorted({word for text in left for word in re.findall(r"[A-Za-z][A-Za-z']*", text)})


@pytest.fixture
def tasks():
    now = timezone.now()
    Worker.objects.create(worker_id="h1:1:a", hostname="h1", pid=1, queues="q1", last_seen=now)
    make_schedule("tests.app.tasks.echo", next_run_at=now - timedelta(minutes=5))  # overdue
    for status in (WAITING, DONE, CANCELLED):
        make_task(status, queue="q1")
    make_task(RUNNING, started_at=None, attempts=0, queue="q1")  # claimed ahead
    started = now - timedelta(seconds=3)
    return make_task(
        ERROR,
        queue="q1",
        error_message="E1",
        started_at=started,
        finished_at=started + timedelta(seconds=1.5),
        history=[{"attempt": 1, "worker_id": "h1:1:a", "started_at": started.isoformat(), "error": None}],
    )


def test_the_task_list_is_translated(admin_client, pseudo, tasks):
    html = admin_client.get(LIST).content.decode()
    assert "⟪Workers alive⟫" in html  # the pseudo-translation is in force
    # "ID" is Django's own label of the primary key.
    assert untranslated(html, ".autotask-summary", "#result_list", "#changelist-form .actions") == ["ID"]


def test_the_task_page_and_its_buttons_are_translated(admin_client, pseudo, tasks):
    html = admin_client.get(change_url(tasks)).content.decode()
    assert "⟪Retry⟫" in html
    # The fieldsets whole: headings, the fields' labels (the model's verbose names),
    # help texts and values.
    regions = (".autotask-buttons", "fieldset.module", ".autotask-history")
    # "ID" is Django's own label of the primary key.
    assert untranslated(html, *regions) == ["ID"]


def test_every_message_is_translated(admin_client, pseudo, tasks):
    failed, waiting = tasks, make_task(WAITING)
    done = make_task(DONE, function="tests.app.tasks.flaky")
    running = make_task(RUNNING)
    schedule = make_schedule("tests.app.tasks.record")
    run = make_task(DONE, function=schedule.name, kind="periodic", schedule=schedule, args="")
    gone = make_schedule("tests.app.gone.job", missing=True)

    def press(task, slug):
        return admin_client.post(change_url(task).replace("/change/", f"/{slug}/"), follow=True)

    shown = []
    for response in (
        press(failed, "retry"),  # retried
        press(failed, "retry"),  # not failed any more
        press(waiting, "cancel"),  # cancelled
        press(running, "cancel"),  # not waiting
        press(done, "run-again"),  # run again
        press(running, "run-again"),  # not finished
        press(make_task(ERROR, function="os.system"), "retry"),  # not declared
        act(admin_client, "retry_failed", [make_task(ERROR, function="tests.app.tasks.flaky"), done]),
        act(admin_client, "cancel_waiting", [make_task(WAITING), make_task(WAITING), running]),
        act(admin_client, "delete_finished", [done, make_task(WAITING)]),
        act(admin_client, "run_schedule_now", [run]),
        act(admin_client, "run_schedule_now", [running]),
        admin_client.post(SCHEDULES, {"action": "run_now", "_selected_action": [gone.pk]}, follow=True),
    ):
        shown += messages_of(response)
    assert len(shown) == 16, "\n".join(shown)
    left = {m: leftover(m) for m in shown}
    assert {m: rest for m, rest in left.items() if re.search("[A-Za-z]", rest)} == {}
