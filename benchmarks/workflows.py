"""The workflows benchmark: a group of no-op tasks with a callback, and set_progress in a loop.

Each figure against its reference in the same run, on the same workers:
- the time from the enqueue of a group of N no-op tasks with a callback to the
  workflow's end (the callback, a no-op over the N results, has run), against
  N plain no-op tasks enqueued with enqueue_many until all are done (target:
  within 1.5x);
- a task calling set_progress 100,000 times in a loop around a small unit of
  work (SHA-256 of 64 bytes), against the same loop without the calls (target:
  at least half as fast); and the bare loops (no work) for the call's own cost.
"""

import time

from benchmarks import harness

GROUP = 10_000
PROGRESS_CALLS = 100_000


def run(suite):
    from autotask import group
    from autotask.models import Workflow
    from benchmarks.tasks import gather, noop, progress_loop, progress_loop_empty

    target = suite.autotask
    workers = suite.options.workers if suite.db == "postgresql" else 1
    plain_s, group_s = [], []
    loops = {key: [] for key in ("work", "work+progress", "empty", "empty+progress")}
    with harness.Processes() as procs:
        target.start_workers(procs, workers)
        suite._run_batch(target, procs, 500)  # warm-up: imports, caches, plans
        for _ in range(suite.options.repeat):
            target.reset()
            harness.execute("DELETE FROM autotask_workflow")
            start = time.time()
            noop.enqueue_many([()] * GROUP)
            suite._nudge(procs)
            plain_s.append(harness.wait_until(lambda: not target.unfinished(), what="plain run") - start)

            target.reset()
            start = time.time()
            handle = group(noop.step() for _ in range(GROUP)).then(gather.step()).enqueue()
            suite._nudge(procs)
            finished = harness.wait_until(
                lambda pk=handle.pk: Workflow.objects.filter(pk=pk, status__gte=3).exists(), what="group run"
            )
            group_s.append(finished - start)
            if handle.status_name != "done" or handle.result != GROUP:
                raise RuntimeError(f"the group ended {handle.status_name}: {handle.error_message}")

            for key, task, report in (
                ("work", progress_loop, False),
                ("work+progress", progress_loop, True),
                ("empty", progress_loop_empty, False),
                ("empty+progress", progress_loop_empty, True),
            ):
                result = task(PROGRESS_CALLS, report)
                suite._nudge(procs)
                if not result.wait(120):
                    raise RuntimeError(f"progress loop {key} did not finish")
                loops[key].append(result.result)
                if report and (result.progress or {}).get("done") != PROGRESS_CALLS:
                    raise RuntimeError(f"the last progress was not written: {result.progress}")
    harness.execute("DELETE FROM autotask_workflow")
    for key, values in (("workflow_group_s", group_s), ("workflow_plain_s", plain_s)):
        suite.record(key, values)
    for key, values in loops.items():
        suite.record(f"progress_loop_{key}_s", values)
    ours, reference = harness.median(group_s), harness.median(plain_s)
    suite.add(
        f"group of {GROUP:,} no-op tasks + callback, {workers} workers: enqueue to the callback's end",
        "ms",
        ours * 1000,
        [(f"{GROUP:,} plain no-op tasks, enqueue to all done", reference * 1000)],
        higher_is_better=False,
        note=f"{ours / reference:.2f}x the plain tasks' time (target: at most 1.5x)",
    )
    work, with_progress = harness.median(loops["work"]), harness.median(loops["work+progress"])
    suite.add(
        f"{PROGRESS_CALLS:,} iterations (SHA-256 of 64 bytes) with set_progress in each",
        "ms",
        with_progress * 1000,
        [("the same loop without set_progress", work * 1000)],
        higher_is_better=False,
        note=f"runs at {work / with_progress:.0%} of the speed without the calls (target: at least 50 %)",
    )
    empty, bare = harness.median(loops["empty"]), harness.median(loops["empty+progress"])
    suite.add(
        f"{PROGRESS_CALLS:,} set_progress calls in an empty loop",
        "ms",
        bare * 1000,
        [("the empty loop", empty * 1000)],
        higher_is_better=False,
        note=f"{(bare - empty) / PROGRESS_CALLS * 1e9:.0f} ns per call",
    )
