"""Charts drawn on the server as SVG: bars per time bucket, lines, horizontal bars (pure).

The dashboard's charts need no JavaScript library and no CDN: the server
draws them and the page swaps them in on each refresh.  Colours come from
CSS classes (``autotask-c-<key>``) the page styles, so the admin's dark
theme applies; every mark carries a ``<title>`` the browser shows on hover.
"""

import math

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

WIDTH, HEIGHT = 720, 180  # the viewBox; the chart scales to its box's width
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 10, 22  # room for the value axis and the time labels
TIME_LABELS = 5  # time labels under a chart, evenly spaced
ROW_HEIGHT = 26  # one queue in the depth chart
LABEL_WIDTH = 160  # the queue names left of the depth chart's bars


def nice_ceiling(value):
    """Return the smallest of 1, 2 or 5 times a power of ten at or above ``value`` (1 for nothing)."""
    if not value or value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # not reached


def format_count(value):
    """Return a count with a narrow no-break space between thousands (an axis' 0.5 as 0.5)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}".replace(",", "\u202f")


def format_ms(value):
    """Return a duration in milliseconds as a short text: 0.4 ms, 12 ms, 1.5 s, 2.5 min."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f} ms".replace(".0 ", " ")
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s".replace(".0 ", " ")
    return f"{value / 60_000:.1f} min".replace(".0 ", " ")


def _shares(top, value_format):
    """Return where the value axis is labelled: bottom, middle, top (no middle half a task)."""
    if value_format is format_count and top * 0.5 != int(top * 0.5):
        return (0, 1)
    return (0, 0.5, 1)


def _frame(top_value, value_format, labels, empty_text, body, aria_label):
    """Return the SVG around ``body``: value axis with grid lines, time labels, a note when empty."""
    plot_height = HEIGHT - TOP - BOTTOM
    grid = format_html_join(
        "",
        '<line class="autotask-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="autotask-axis" x="{}" y="{}" text-anchor="end">{}</text>',
        (
            (LEFT, WIDTH - RIGHT, y, y, LEFT - 6, y + 4, value_format(top_value * share))
            for share in _shares(top_value, value_format)
            for y in [round(TOP + plot_height * (1 - share), 1)]
        ),
    )
    ticks = []
    if labels:
        count = min(TIME_LABELS, len(labels))
        slot = (WIDTH - LEFT - RIGHT) / len(labels)
        for index in sorted({round(i * (len(labels) - 1) / max(1, count - 1)) for i in range(count)}):
            anchor = "start" if index == 0 else "end" if index == len(labels) - 1 else "middle"
            x = LEFT + slot * index + (0 if anchor == "start" else slot if anchor == "end" else slot / 2)
            ticks.append((round(x, 1), HEIGHT - 6, anchor, labels[index]))
    time_labels = format_html_join(
        "", '<text class="autotask-axis" x="{}" y="{}" text-anchor="{}">{}</text>', ticks
    )
    note = (
        format_html(
            '<text class="autotask-empty" x="{}" y="{}" text-anchor="middle">{}</text>',
            (LEFT + WIDTH - RIGHT) / 2,
            TOP + plot_height / 2,
            empty_text,
        )
        if empty_text
        else ""
    )
    return format_html(
        '<svg class="autotask-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}{}{}{}</svg>',
        WIDTH,
        HEIGHT,
        aria_label,
        grid,
        body,
        time_labels,
        note,
    )


def bar_chart(labels, series, *, aria_label, empty_text):
    """Return stacked bars, one per time bucket: ``series`` is ``[(key, name, [count, ...]), ...]``.

    ``labels`` name the buckets (shown under the chart and in each bar's title).
    """
    totals = [sum(values[i] for _, _, values in series) for i in range(len(labels))]
    top = nice_ceiling(max(totals, default=0))
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    gap = min(1.0, slot * 0.15)
    scale = (HEIGHT - TOP - BOTTOM) / top
    marks = []
    for index, label in enumerate(labels):
        if not totals[index]:
            continue
        title = ", ".join(f"{name} {format_count(values[index])}" for _, name, values in series)
        base = HEIGHT - BOTTOM
        rects = []
        for key, _, values in series:
            if values[index]:
                height = values[index] * scale
                base -= height
                rects.append((key, round(LEFT + slot * index + gap / 2, 2), round(base, 2), round(height, 2)))
        marks.append(
            format_html(
                "<g><title>{}: {}</title>{}</g>",
                label,
                title,
                format_html_join(
                    "",
                    '<rect class="autotask-c-{}" x="{}" y="{}" width="{}" height="{}"/>',
                    ((key, x, y, round(slot - gap, 2), height) for key, x, y, height in rects),
                ),
            )
        )
    body = mark_safe("".join(marks))
    return _frame(top, format_count, labels, "" if any(totals) else empty_text, body, aria_label)


def line_chart(labels, series, *, aria_label, empty_text):
    """Return lines of durations (ms) over time buckets: ``series`` is ``[(key, name, [ms|None, ...])]``.

    A bucket without a value breaks the line; a lone value is a dot.
    """
    values = [v for _, _, points in series for v in points if v is not None]
    top = nice_ceiling(max(values, default=0))
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    scale = (HEIGHT - TOP - BOTTOM) / top
    marks = []
    for key, name, points in series:
        coordinates = [
            None if v is None else (round(LEFT + slot * (i + 0.5), 2), round(HEIGHT - BOTTOM - v * scale, 2))
            for i, v in enumerate(points)
        ]
        runs, run = [], []
        for point in [*coordinates, None]:
            if point is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(point)
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{x},{y}" for x, y in run)
                marks.append(format_html('<polyline class="autotask-c-{}" points="{}"/>', key, path))
        dots = (
            (key, x, y, labels[i], name, format_ms(points[i]))
            for i, point in enumerate(coordinates)
            if point is not None
            for x, y in [point]
        )
        marks.append(
            format_html_join(
                "",
                '<circle class="autotask-c-{}" cx="{}" cy="{}" r="2.5"><title>{}: {} {}</title></circle>',
                dots,
            )
        )
    body = mark_safe("".join(marks))
    return _frame(top, format_ms, labels, "" if values else empty_text, body, aria_label)


def hbar_chart(rows, series, *, aria_label, empty_text):
    """Return one horizontal stacked bar per row of ``(label, {key: count})``; ``series``: ``[(key, name)]``.

    All rows share one scale, so a long queue looks long beside a short one.
    """
    if not rows:
        return format_html('<p class="autotask-empty-note">{}</p>', empty_text)
    height = TOP + ROW_HEIGHT * len(rows) + BOTTOM
    top = nice_ceiling(max(sum(counts.get(k, 0) for k, _ in series) for _, counts in rows))
    scale = (WIDTH - LABEL_WIDTH - RIGHT) / top
    marks = []
    for position, (label, counts) in enumerate(rows):
        y = TOP + ROW_HEIGHT * position
        title = ", ".join(f"{name} {format_count(counts.get(key, 0))}" for key, name in series)
        x = LABEL_WIDTH
        rects = []
        for key, _ in series:
            width = counts.get(key, 0) * scale
            if width:
                rects.append((key, round(x, 2), y + 3, round(width, 2), ROW_HEIGHT - 6))
                x += width
        marks.append(
            format_html(
                "<g><title>{}: {}</title>"
                '<text class="autotask-axis" x="{}" y="{}" text-anchor="end">{}</text>{}</g>',
                label,
                title,
                LABEL_WIDTH - 8,
                y + ROW_HEIGHT / 2 + 4,
                label,
                format_html_join(
                    "",
                    '<rect class="autotask-c-{}" x="{}" y="{}" width="{}" height="{}"/>',
                    rects,
                ),
            )
        )
    scale_labels = format_html_join(
        "",
        '<line class="autotask-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="autotask-axis" x="{}" y="{}" text-anchor="{}">{}</text>',
        (
            (x, x, TOP, height - BOTTOM, x, height - 6, anchor, format_count(top * share))
            for share, anchor in ((0, "start"), (0.5, "middle"), (1, "end"))
            if share in _shares(top, format_count)
            for x in [round(LABEL_WIDTH + (WIDTH - LABEL_WIDTH - RIGHT) * share, 1)]
        ),
    )
    return format_html(
        '<svg class="autotask-chart autotask-hbars" viewBox="0 0 {} {}" role="img" '
        'aria-label="{}">{}{}</svg>',
        WIDTH,
        height,
        aria_label,
        scale_labels,
        mark_safe("".join(marks)),
    )
