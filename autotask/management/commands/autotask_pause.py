"""``manage.py autotask_pause queue|schedule NAME...``: pause queues or schedules."""

from ..pausing import PauseCommand


class Command(PauseCommand):
    help = (
        "Pause queues (no worker claims their tasks; they wait) or periodic/cron schedules (no run "
        "is enqueued) until autotask_resume. Stored in the database: holds across worker restarts. "
        "A queue may be paused before any task uses it (a warning names such queues)."
    )
    pausing = True
