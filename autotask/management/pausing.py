"""``autotask_pause`` and ``autotask_resume``: one command shape, two directions."""

import getpass

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from ..conf import conf
from ..db import hint_for
from ..exceptions import InvalidQueueName, ScheduleNotFound
from ..maintenance import pauses


class PauseCommand(BaseCommand):
    """Pause (``pausing``) or resume queues or schedules named on the command line."""

    pausing = True

    def add_arguments(self, parser):
        parser.add_argument("what", choices=("queue", "schedule"), help="Pause queues or schedules.")
        parser.add_argument(
            "names",
            nargs="+",
            metavar="NAME",
            help="Queue names, or schedules' dotted function paths (as autotask_status lists them).",
        )
        parser.add_argument("--database", default=None, help="Database alias (default: AUTOTASK_DATABASE).")

    def handle(self, *args, **options):
        using = options["database"] or conf.DATABASE
        names = list(dict.fromkeys(options["names"]))
        try:
            if options["what"] == "queue":
                self._queues(names, using)
            else:
                self._schedules(names, using)
        except (InvalidQueueName, ScheduleNotFound) as exc:
            raise CommandError(str(exc)) from exc
        except DatabaseError as exc:
            raise CommandError(f"cannot change the pauses: {exc}{hint_for(exc)}") from exc

    def _queues(self, names, using):
        for name in names:  # every name checked before any is changed
            pauses.check_queue_name(name)
            if "," in name or name != name.strip():
                # A list in one argument, as --queues takes it: most likely not one queue's name.
                raise CommandError(f"{name!r} is not a queue name: give queue names separated by spaces")
        unknown = set(pauses.unknown_queues(names, using=using)) if self.pausing else set()
        self._apply("queue", names, using, pauses.pause_queue, pauses.resume_queue)
        for name in names:
            if name in unknown:
                self.stderr.write(
                    self.style.WARNING(
                        f"warning: no waiting task, schedule or worker uses the queue {name!r}; it is paused "
                        "ahead of time (check the name for a typo)"
                    )
                )

    def _schedules(self, names, using):
        for name in names:  # every name checked before any is changed
            pauses.stored_schedule(name, using)
        self._apply("schedule", names, using, pauses.pause_schedule, pauses.resume_schedule)

    def _apply(self, what, names, using, pause, resume):
        for name in names:
            changed = pause(name, using=using, by=_who()) if self.pausing else resume(name, using=using)
            self._report(what, name, changed)

    def _report(self, what, name, changed):
        done = "paused" if self.pausing else "resumed"
        if changed:
            self.stdout.write(self.style.SUCCESS(f"{done} {what} {name}"))
        else:
            state = "already paused" if self.pausing else "not paused"
            self.stdout.write(f"{what} {name} was {state}")


def _who():
    try:
        return f"command ({getpass.getuser()})"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "command"
