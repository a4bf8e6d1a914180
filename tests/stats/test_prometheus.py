"""Prometheus metrics: a scrape of the metrics view, parsed by prometheus_client's own parser."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from autotask.models import HISTOGRAM_BOUNDS_MS, TaskQueue, TaskStatsTotal, Worker, bucket_fields
from autotask.task import RUNNING, WAITING
from tests.app import tasks
from tests.conftest import wait_for


def scrape():
    """Return {metric name: {labels (sorted tuple): value}} of one scrape of /metrics/."""
    response = Client().get("/metrics/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def labels(**values):
    return tuple(sorted(values.items()))


@pytest.mark.django_db
def test_depth_oldest_due_and_workers():
    now = timezone.now()
    for age in (30, 5, -3600):
        TaskQueue.objects.create(
            function="tests.app.tasks.add",
            status=WAITING,
            queue="mail",
            scheduled_at=now - timedelta(seconds=age),
        )
    TaskQueue.objects.create(function="tests.app.tasks.add", status=RUNNING, queue="mail", worker_id="h:1:a")
    Worker.objects.create(worker_id="h:1:a", hostname="h", pid=1, last_seen=now)
    Worker.objects.create(worker_id="h:2:b", hostname="h", pid=2, last_seen=now - timedelta(hours=1))
    samples = scrape()
    tasks_ = samples["autotask_queue_tasks"]
    assert tasks_[labels(queue="mail", state="waiting")] == 3
    assert tasks_[labels(queue="mail", state="due")] == 2
    assert tasks_[labels(queue="mail", state="running")] == 1
    assert samples["autotask_queue_oldest_due_seconds"][labels(queue="mail")] >= 30
    assert samples["autotask_workers_alive"][()] == 1


@pytest.mark.django_db
def test_totals_become_counters_and_histograms():
    run = dict.fromkeys(bucket_fields("run"), 0)
    run["run_b0"], run["run_b3"], run[f"run_b{len(HISTOGRAM_BOUNDS_MS)}"] = 2, 1, 1  # <=5 ms, <=50 ms, slower
    TaskStatsTotal.objects.create(queue="default", outcome="done", count=4, run_ms_sum=400_000.0, **run)
    TaskStatsTotal.objects.create(queue="default", outcome="cancelled", count=3)
    samples = scrape()
    done = labels(queue="default", outcome="done")
    assert samples["autotask_tasks_total"] == {done: 4, labels(queue="default", outcome="cancelled"): 3}
    buckets = samples["autotask_task_run_seconds_bucket"]

    def le(bound):
        return buckets[labels(queue="default", outcome="done", le=bound)]

    assert (le("0.005"), le("0.01"), le("0.05"), le("300.0"), le("+Inf")) == (2, 2, 3, 3, 4)
    assert samples["autotask_task_run_seconds_count"][done] == 4
    assert samples["autotask_task_run_seconds_sum"][done] == 400.0
    # A cancelled task never ran: counted, without durations.
    assert all(("outcome", "cancelled") not in key for key in buckets) and len(buckets) == 15


@pytest.mark.django_db(transaction=True)
def test_counters_add_up_every_worker(worker_process):
    worker_process()
    worker_process()
    handles = [tasks.add(i, i) for i in range(20)] + [tasks.boom() for _ in range(2)]
    for handle in handles:
        assert handle.wait(30)

    def counted():
        totals = scrape().get("autotask_tasks_total", {})
        return (
            totals.get(labels(queue="default", outcome="done")) == 20
            and totals.get(labels(queue="default", outcome="error")) == 2
        )

    wait_for(counted, message="the scrape to count every task of both workers")
    samples = scrape()
    done = labels(queue="default", outcome="done")
    assert samples["autotask_task_run_seconds_count"][done] == 20
    assert samples["autotask_task_pickup_delay_seconds_count"][done] == 20
    assert samples["autotask_workers_alive"][()] == 2
