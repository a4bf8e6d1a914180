"""The dashboard's SVG charts (autotask.charts): well-formed, to scale, escaped, titled, empty said so."""

import xml.etree.ElementTree as ET

import pytest

from autotask import charts

SVG = "{http://www.w3.org/2000/svg}"
LABELS = ["12:00", "12:01", "12:02", "12:03"]


def parse(svg):
    """Parse a chart as XML (it is inline SVG: well-formed or the browser guesses)."""
    return ET.fromstring(str(svg).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def find(tree, tag, cls=None):
    return [e for e in tree.iter(SVG + tag) if cls is None or e.get("class") == cls]


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (None, 1), (0.3, 0.5), (1, 1), (3, 5), (7, 10), (10, 10), (11, 20), (4500, 5000), (120, 200)],
)
def test_nice_ceiling(value, ceiling):
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (None, "-"),
        (0.42, "0.4 ms"),
        (3, "3 ms"),
        (12.4, "12 ms"),
        (1500, "1.5 s"),
        (2000, "2 s"),
        (150_000, "2.5 min"),
    ],
)
def test_format_ms(ms, text):
    assert charts.format_ms(ms) == text


def test_bar_chart_stacks_outcomes_to_scale_with_a_title_per_bucket():
    svg = charts.bar_chart(
        LABELS,
        [("done", "done", [4, 0, 10, 1]), ("error", "failed", [1, 0, 0, 1])],
        aria_label="Tasks finished per minute",
        empty_text="nothing",
    )
    tree = parse(svg)
    assert tree.get("role") == "img" and tree.get("aria-label") == "Tasks finished per minute"
    done, error = find(tree, "rect", "autotask-c-done"), find(tree, "rect", "autotask-c-error")
    assert len(done) == 3 and len(error) == 2  # no rect for a zero, no group for an empty bucket
    # The tallest bucket (10) is the scale's top (10): its bar fills the plot's height.
    plot = charts.HEIGHT - charts.TOP - charts.BOTTOM
    assert float(done[1].get("height")) == pytest.approx(plot)
    assert float(done[0].get("height")) == pytest.approx(plot * 4 / 10)
    # Stacked: the error sits on top of the done part of the same bucket.
    assert float(error[0].get("y")) + float(error[0].get("height")) == pytest.approx(float(done[0].get("y")))
    titles = [t.text for t in find(tree, "title")]
    assert titles == ["12:00: done 4, failed 1", "12:02: done 10, failed 0", "12:03: done 1, failed 1"]
    axis = [t.text for t in find(tree, "text", "autotask-axis")]
    assert axis[:3] == ["0", "5", "10"] and "12:00" in axis and "12:03" in axis
    assert not find(tree, "text", "autotask-empty")


def test_bar_chart_without_tasks_says_so():
    tree = parse(
        charts.bar_chart(LABELS, [("done", "done", [0, 0, 0, 0])], aria_label="x", empty_text="No task")
    )
    assert not find(tree, "rect")
    assert [t.text for t in find(tree, "text", "autotask-empty")] == ["No task"]


def test_line_chart_breaks_at_missing_values_and_dots_each_value():
    tree = parse(
        charts.line_chart(
            LABELS,
            [("p50", "p50", [10.0, 20.0, None, 40.0]), ("p95", "p95", [None, None, None, None])],
            aria_label="Run time",
            empty_text="none",
        )
    )
    lines = find(tree, "polyline", "autotask-c-p50")
    assert len(lines) == 1 and len(lines[0].get("points").split()) == 2  # 12:00-12:01; 12:03 alone
    assert len(find(tree, "circle", "autotask-c-p50")) == 3 and not find(tree, "circle", "autotask-c-p95")
    assert "12:03: p50 40 ms" in [t.text for t in find(tree, "title")]
    assert [t.text for t in find(tree, "text", "autotask-axis")][:3] == ["0 ms", "25 ms", "50 ms"]


def test_line_chart_without_values_says_so():
    tree = parse(charts.line_chart(LABELS, [("p50", "p50", [None] * 4)], aria_label="x", empty_text="empty"))
    assert [t.text for t in find(tree, "text", "autotask-empty")] == ["empty"]


def test_hbar_chart_shares_one_scale_and_escapes_queue_names():
    series = [("running", "running"), ("due", "due")]
    svg = charts.hbar_chart(
        [("<mail>", {"running": 2, "due": 8}), ("reports", {"running": 0, "due": 5})],
        series,
        aria_label="Queue depth",
        empty_text="none",
    )
    assert "<mail>" not in str(svg) and "&lt;mail&gt;" in str(svg)
    tree = parse(svg)
    widths = {
        (title.text.split(":")[0], rect.get("class")): float(rect.get("width"))
        for group in find(tree, "g")
        for title in find(group, "title")
        for rect in find(group, "rect")
    }
    full = charts.WIDTH - charts.LABEL_WIDTH - charts.RIGHT  # the top of the scale: 10
    assert widths == {
        ("<mail>", "autotask-c-running"): pytest.approx(full * 0.2),
        ("<mail>", "autotask-c-due"): pytest.approx(full * 0.8),
        ("reports", "autotask-c-due"): pytest.approx(full * 0.5),
    }


def test_hbar_chart_without_rows_is_a_note():
    assert str(charts.hbar_chart([], [("due", "due")], aria_label="x", empty_text="Nothing waits.")) == (
        '<p class="autotask-empty-note">Nothing waits.</p>'
    )


def test_count_axes_never_show_half_a_task():
    tree = parse(charts.bar_chart(["12:00"], [("error", "failed", [1])], aria_label="x", empty_text=""))
    assert [t.text for t in find(tree, "text", "autotask-axis")] == ["0", "1", "12:00"]
    tree = parse(charts.hbar_chart([("q", {"due": 1})], [("due", "due")], aria_label="x", empty_text=""))
    assert [t.text for t in find(tree, "text", "autotask-axis")] == ["0", "1", "q"]
