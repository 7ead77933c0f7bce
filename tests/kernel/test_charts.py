"""The SVG kit both the dashboard and the evaluation report draw with (kernel.charts)."""

from __future__ import annotations

from kernel.charts import GRID_STEPS, bar, grid_rows, svg_open


def test_svg_open_scales_to_its_container_unless_fixed_and_names_the_image_only_with_a_label():
    assert svg_open(480, 220, css_class="chart", label='a <"b">') == (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 480 220" width="100%" '
        'role="img" aria-label="a &lt;&quot;b&quot;&gt;" class="chart">'
    )
    assert svg_open(480, 220, css_class="chart") == (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 480 220" width="100%" class="chart">'
    )
    fixed = svg_open(640, 240, css_class="rx-eval-figure", label="", fixed_size=True)
    assert 'width="640" height="240" role="img" aria-label=""' in fixed


def test_a_bars_tooltip_is_escaped():
    assert bar(1, 2.25, 3, 4.04, "#000", "<b> & 5") == (
        '<rect x="1.0" y="2.2" width="3.0" height="4.0" fill="#000"><title>&lt;b&gt; &amp; 5</title></rect>'
    )


def test_grid_rows_run_from_the_bottom_of_the_plot_to_its_top():
    rows = list(grid_rows(10, 100))
    assert rows[0] == (0, 110) and rows[-1] == (GRID_STEPS, 10) and len(rows) == GRID_STEPS + 1
