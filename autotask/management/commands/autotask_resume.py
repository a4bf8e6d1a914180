"""``manage.py autotask_resume queue|schedule NAME...``: resume paused queues or schedules."""

from ..pausing import PauseCommand


class Command(PauseCommand):
    help = (
        "Resume paused queues (their workers are woken) or schedules (the next run is the next "
        "occurrence after now; runs missed while paused are not made up)."
    )
    pausing = False
