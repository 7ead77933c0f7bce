"""The staff dashboard's charts, drawn with the SVG kit of ``kernel.charts`` (no JavaScript, no
CDN, no inline CSS); each bar and point has a ``<title>`` so hovering shows its value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from kernel.charts import FONT as KIT_FONT
from kernel.charts import GRID_STEPS, PALETTE, bar, grid_rows, svg_open

FONT = f'{KIT_FONT} fill="#444"'


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]
    color: str = ""


def _colors(series: Sequence[Series]) -> list[str]:
    return [s.color or PALETTE[i % len(PALETTE)] for i, s in enumerate(series)]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return float(step * 4) if value > step * 2 else float(max(step * 2, value))
    return float(value)


def _legend(series: Sequence[Series], colors: list[str], x: int, y: int) -> list[str]:
    parts, offset = [], x
    for s, color in zip(series, colors, strict=True):
        parts.append(f'<rect x="{offset}" y="{y - 9}" width="10" height="10" rx="2" fill="{color}"/>')
        parts.append(f'<text x="{offset + 14}" y="{y}" {FONT}>{escape(s.label)}</text>')
        offset += 24 + 7 * len(s.label)
    return parts


def stacked_bars(
    labels: Sequence[str], series: Sequence[Series], *, width: int = 480, height: int = 220, title: str = ""
) -> SafeString:
    """Stacked vertical bars, one per label (e.g. per day), one colour per series."""
    colors = _colors(series)
    left, right, top, bottom = 36, 8, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum((s.values[i] or 0) for s in series) for i in range(len(labels))]
    y_max = _nice_max(max(totals, default=0))
    n = max(len(labels), 1)
    slot = plot_w / n
    bar_w = max(2.0, slot * 0.75)
    parts = [svg_open(width, height, css_class="chart", label=title)]
    for tick, y in grid_rows(top, plot_h):
        value = y_max * tick / GRID_STEPS
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{value:g}</text>')
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        for s, color in zip(series, colors, strict=True):
            value = s.values[i] or 0
            if not value:
                continue
            h = plot_h * value / y_max
            y -= h
            parts.append(bar(x, y, bar_w, h, color, f"{label} · {s.label}: {value:g}"))
        if n <= 8 or i % max(1, n // 6) == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" {FONT}>'
                f"{escape(label)}</text>"
            )
    parts += _legend(series, colors, left, 14)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    width: int = 480,
    height: int = 220,
    y_max: float = 100.0,
    unit: str = "%",
    title: str = "",
) -> SafeString:
    """Lines with points; ``None`` values leave a gap."""
    colors = _colors(series)
    left, right, top, bottom = 40, 24, 26, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(labels)
    step = plot_w / max(n - 1, 1)
    parts = [svg_open(width, height, css_class="chart", label=title)]
    for tick, y in grid_rows(top, plot_h):
        value = y_max * tick / GRID_STEPS
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{value:g}{unit}</text>')
    for i, label in enumerate(labels):
        x = left + step * i if n > 1 else left + plot_w / 2
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 14}" text-anchor="middle" {FONT}>{escape(label)}</text>')
    for s, color in zip(series, colors, strict=True):
        points: list[tuple[float, float, float]] = []
        for i, value in enumerate(s.values):
            if value is None:
                continue
            x = left + step * i if n > 1 else left + plot_w / 2
            points.append((x, top + plot_h - plot_h * min(value, y_max) / y_max, value))
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (x, y, value), label in zip(
            points, [labels[i] for i, v in enumerate(s.values) if v is not None], strict=True
        ):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}">'
                f"<title>{escape(label)} · {escape(s.label)}: {value:.0f}{unit}</title></circle>"
            )
    parts += _legend(series, colors, left, 14)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def horizontal_bars(rows: Sequence[tuple[str, float]], *, width: int = 480, color: str = PALETTE[0]) -> SafeString:
    """A ranked list as horizontal bars with their labels and values."""
    bar_h, gap, label_w = 16, 6, 230
    height = max(1, len(rows)) * (bar_h + gap) + gap
    top_value = max((v for _, v in rows), default=0) or 1
    plot_w = width - label_w - 40
    parts = [svg_open(width, height, css_class="chart")]
    for i, (label, value) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        w = max(1.0, plot_w * value / top_value)
        short = label if len(label) <= 36 else label[:35] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" {FONT}>'
            f"{escape(short)}<title>{escape(label)}</title></text>"
        )
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="3" fill="{color}"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" {FONT}>{value:g}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
