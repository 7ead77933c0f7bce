"""The one kit for server-side SVG charts: the staff dashboard (``submissions.charts``) and the
evaluation report (``matching.evaluation_report``) draw with it. No JavaScript, no CDN, no inline
CSS: colours are SVG presentation attributes (a strict Content-Security-Policy allows them, unlike
``style=``), and each bar has a ``<title>`` so hovering shows its value.

Only what both pictures share lives here (colours, font, the ``<svg>`` element, a bar with its
tooltip, the horizontal grid's rows); each keeps its own layout.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.utils.html import escape

BLUE, GREEN, AMBER, RED = "#2563eb", "#16a34a", "#f59e0b", "#dc2626"
PURPLE, CYAN, PINK, LIME = "#7c3aed", "#0891b2", "#db2777", "#65a30d"
SLATE = "#94a3b8"
# The series colours in order (SLATE is not one: it marks "not yet", e.g. a waiting submission).
PALETTE = [BLUE, GREEN, AMBER, RED, PURPLE, CYAN, PINK, LIME]
# Every text's font, as attributes; a chart adds its own fill.
FONT = 'font-family="system-ui, sans-serif" font-size="11"'
# Horizontal lines at 0, 1/4, ..., 4/4 of the value axis.
GRID_STEPS = 4


def svg_open(width: int, height: int, *, css_class: str, label: str | None = None, fixed_size: bool = False) -> str:
    """The opening ``<svg>`` tag: scaled to its container's width unless ``fixed_size``; with a
    ``label`` it is an image with that accessible name."""
    size = f'width="{width}" height="{height}"' if fixed_size else 'width="100%"'
    role = "" if label is None else f' role="img" aria-label="{escape(label)}"'
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" {size}{role} class="{css_class}">'


def bar(x: float, y: float, width: float, height: float, color: str, tooltip: str) -> str:
    """A bar whose ``<title>`` (escaped here) shows on hover."""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{color}">'
        f"<title>{escape(tooltip)}</title></rect>"
    )


def grid_rows(top: float, plot_height: float) -> Iterator[tuple[int, float]]:
    """``(step, y)`` of each grid line, bottom (step 0) to top (step ``GRID_STEPS``)."""
    for step in range(GRID_STEPS + 1):
        yield step, top + plot_height - plot_height * step / GRID_STEPS
