"""Prometheus metrics of the queue, read from the database at each scrape (the ``prometheus`` extra).

Every figure comes from the tables every worker writes to, so one scrape of
any process sees every worker on every machine: queue depth and the oldest
due task from the task rows (WAITING and RUNNING only, through their partial
indexes), outcomes and the duration histograms from the statistics totals
(monotonic: never pruned), workers alive from their heartbeats.

Serve them with ``path("metrics/", autotask.prometheus.metrics_view)``, or
register :class:`AutotaskCollector` in a registry of your own.
"""

from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - the extra is installed wherever this module is tested
    raise ImportError(
        "autotask.prometheus needs the prometheus_client package: pip install 'autotask[prometheus]'"
    ) from exc

from . import monitor
from .conf import conf
from .models import HISTOGRAM_BOUNDS_MS, TaskStatsTotal, Worker, bucket_fields

NAMESPACE = "autotask"
# Prometheus' histograms count "less than or equal to" an upper bound, in seconds.
BOUNDS_SECONDS = [bound / 1000 for bound in HISTOGRAM_BOUNDS_MS]
MEASURES = {
    "pickup": ("task_pickup_delay_seconds", "Seconds from when a task was due to when a worker started it."),
    "run": ("task_run_seconds", "Seconds a task ran."),
}


class AutotaskCollector(Collector):
    """Collect the queue's metrics from the database ``using`` (default: AUTOTASK_DATABASE)."""

    def __init__(self, using=None):
        self.using = using

    def collect(self):
        using = self.using or conf.DATABASE
        now = timezone.now()
        yield from self._depth(monitor.queue_depth(using, now))
        yield from self._totals(TaskStatsTotal.objects.using(using).order_by("queue", "outcome"))
        alive = GaugeMetricFamily(
            f"{NAMESPACE}_workers_alive", "Workers whose heartbeat is recent (as autotask_status counts)."
        )
        alive.add_metric(
            [], Worker.objects.using(using).filter(last_seen__gte=monitor.alive_after(now)).count()
        )
        yield alive

    def _depth(self, depth):
        tasks = GaugeMetricFamily(
            f"{NAMESPACE}_queue_tasks",
            "Tasks in a queue: waiting (due or not), due (waiting and due now), running.",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            f"{NAMESPACE}_queue_oldest_due_seconds",
            "Seconds the oldest due waiting task of a queue has waited (0: none due).",
            labels=["queue"],
        )
        for row in depth:
            for state in ("waiting", "due", "running"):
                tasks.add_metric([row["queue"], state], row[state])
            oldest.add_metric([row["queue"]], row["oldest_due_seconds"] or 0.0)
        yield tasks
        yield oldest

    def _totals(self, totals):
        outcomes = CounterMetricFamily(
            f"{NAMESPACE}_tasks",
            "Tasks finished by outcome (done, error, retried, cancelled), counted by the workers.",
            labels=["queue", "outcome"],
        )
        histograms = {
            measure: HistogramMetricFamily(f"{NAMESPACE}_{name}", text, labels=["queue", "outcome"])
            for measure, (name, text) in MEASURES.items()
        }
        for total in totals:
            labels = [total.queue, total.outcome]
            outcomes.add_metric(labels, total.count)
            if total.outcome == "cancelled":
                continue  # never ran: no pickup, no run time
            for measure, family in histograms.items():
                counts = [getattr(total, name) for name in bucket_fields(measure)]
                family.add_metric(labels, _cumulative(counts), getattr(total, f"{measure}_ms_sum") / 1000)
        yield outcomes
        yield from histograms.values()


def _cumulative(counts):
    """Return Prometheus' buckets, [(upper bound, count <= it)], from per-bucket ``counts``."""
    buckets, seen = [], 0
    for bound, count in zip([*map(str, BOUNDS_SECONDS), "+Inf"], counts, strict=True):
        seen += count
        buckets.append((bound, seen))
    return buckets


def registry(using=None):
    """Return a registry holding only the queue's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AutotaskCollector(using))
    return registry


@never_cache
@require_GET
def metrics_view(request):
    """Serve the queue's metrics in Prometheus' text format."""
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


__all__ = ["AutotaskCollector", "metrics_view", "registry"]
