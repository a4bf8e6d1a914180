"""OpenTelemetry SDK set-ups for the tracing tests: in memory here, a JSON-lines file in a worker."""

import json
import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_memory = None


def _sdk_provider():
    """The process's SDK tracer provider, set as the global one if none is set yet."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())  # once per process; later calls are refused
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider), f"another tracer provider is set: {provider!r}"
    return provider


def memory_exporter():
    """The in-memory exporter every span of this process goes to (set up once)."""
    global _memory
    if _memory is None:
        _memory = InMemorySpanExporter()
        _sdk_provider().add_span_processor(SimpleSpanProcessor(_memory))
    return _memory


def as_dict(span):
    """What the tests compare of a finished span, the same in this process and from a worker's file."""
    context = span.get_span_context()
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "attributes": dict(span.attributes),
        "status": span.status.status_code.name,
        "description": span.status.description,
        "events": [{"name": event.name, **dict(event.attributes)} for event in span.events],
        "links": [f"{link.context.span_id:016x}" for link in span.links],
    }


class FileSpanExporter(SpanExporter):
    """Append each finished span to ``path`` as one JSON line (what a worker process exports)."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def export(self, spans):
        text = "".join(json.dumps(as_dict(span)) + "\n" for span in spans)
        with self.lock, open(self.path, "a") as file:
            file.write(text)
        return SpanExportResult.SUCCESS


def export_to_file(path):
    """Send every span this process finishes to ``path`` (called by tests/tracing/settings.py)."""
    _sdk_provider().add_span_processor(SimpleSpanProcessor(FileSpanExporter(path)))


def read_file(path):
    """The spans a worker wrote to ``path`` so far (complete lines only)."""
    try:
        with open(path) as file:
            text = file.read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]
