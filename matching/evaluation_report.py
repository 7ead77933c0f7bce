"""The evaluation report as HTML: tables and SVG figures drawn here with the kit of
``kernel.charts`` (no JavaScript, no CDN).

``render_fragment`` is the body shown in the admin (no inline style: the Content-Security-Policy
forbids it; colours are SVG presentation attributes); ``render_page`` wraps it with a small style
sheet into the standalone ``report.html``. With untrained weights, the page says so at the top and
every figure carries the label inside the picture itself, so a screenshot cannot lose it.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape

from kernel.charts import AMBER, BLUE, FONT, GREEN, GRID_STEPS, RED, bar, grid_rows, svg_open
from matching.evaluation.summary import Summary

# The series colours in order (the histogram: right answers GREEN, wrong ones RED).
COLORS = [BLUE, AMBER, GREEN, RED]
UNTRAINED_LABEL = "MODELO NÃO TREINADO — números sem valor clínico"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _fit(label: str, room: float) -> str:
    """A category label cut to the width of its group (about 6 px per character at 11 px)."""
    most = max(3, int(room / 6.2))
    if len(label) <= most:
        return label
    last = label.split()[-1]
    if " " in label and len(last) + 3 <= most:  # keep the distinguishing end: "Fabri… A"
        return label[: most - len(last) - 2] + "… " + last
    return label[: most - 1] + "…"


def _svg_frame(width: int, height: int, title: str, untrained: bool, body: list[str]) -> str:
    parts = [
        svg_open(width, height, css_class="rx-eval-figure", label=title, fixed_size=True),
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff" stroke="#dddddd"/>',
        f'<text x="8" y="16" {FONT} font-weight="600" fill="#222">{escape(title)}</text>',
    ]
    if untrained:  # its own line under the title: long titles never hide it
        parts.append(f'<text x="8" y="31" {FONT} font-weight="700" fill="#b91c1c">{escape(UNTRAINED_LABEL)}</text>')
    parts += body
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    untrained: bool,
    width: int = 640,
    height: int = 240,
    maximum: float = 1.0,
    percent: bool = True,
) -> str:
    """Grouped vertical bars (values 0..maximum), one group per category, one colour per series."""
    left, top, bottom = 40, 50, 46
    plot_h = height - top - bottom
    plot_w = width - left - 10
    body: list[str] = []
    for i, y in grid_rows(top, plot_h):
        label = f"{maximum * i / GRID_STEPS * 100:.0f}%" if percent else f"{maximum * i / GRID_STEPS:.0f}"
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#eeeeee"/>')
        body.append(f'<text x="{left - 4}" y="{y + 4:.1f}" {FONT} text-anchor="end" fill="#666">{label}</text>')
    groups = max(1, len(categories))
    group_w = plot_w / groups
    bar_w = max(2.0, (group_w - 8) / max(1, len(series)))
    for g, category in enumerate(categories):
        x0 = left + g * group_w + 4
        for s, (name, values) in enumerate(series):
            value = values[g] if g < len(values) else 0.0
            h = plot_h * (min(value, maximum) / maximum if maximum else 0)
            x = x0 + s * bar_w
            shown = f"{value * 100:.1f}%" if percent else f"{value:.0f}"
            body.append(
                bar(x, top + plot_h - h, bar_w - 1, h, COLORS[s % len(COLORS)], f"{name} · {category}: {shown}")
            )
        body.append(
            f'<text x="{x0 + (group_w - 8) / 2:.1f}" y="{height - bottom + 14}" {FONT} text-anchor="middle" '
            f'fill="#333">{escape(_fit(category, group_w))}</text>'
        )
    for s, (name, _) in enumerate(series):
        x = left + s * 200
        body.append(f'<rect x="{x}" y="{height - 16}" width="10" height="10" fill="{COLORS[s % len(COLORS)]}"/>')
        body.append(f'<text x="{x + 14}" y="{height - 7}" {FONT} fill="#333">{escape(name[:30])}</text>')
    return _svg_frame(width, height, title, untrained, body)


def histogram(title: str, right: Sequence[float], wrong: Sequence[float], cut: float, *, untrained: bool) -> str:
    """Top-1 similarity of right and wrong answers, with the current "no convincing match" cut."""
    values = list(right) + list(wrong) + [cut]
    low, high = min(values), max(values)
    if high - low < 1e-6:
        low, high = low - 0.01, high + 0.01
    bins = 20
    step = (high - low) / bins

    def counts(xs: Sequence[float]) -> list[int]:
        out = [0] * bins
        for x in xs:
            out[min(bins - 1, int((x - low) / step))] += 1
        return out

    r, w = counts(right), counts(wrong)
    width, height, left, top, bottom = 640, 240, 40, 50, 46
    plot_w, plot_h = width - left - 10, height - top - bottom
    peak = max([1, *r, *w])
    body: list[str] = []
    bw = plot_w / bins
    for i in range(bins):
        for j, (series, color) in enumerate(((r, GREEN), (w, RED))):
            h = plot_h * series[i] / peak
            x = left + i * bw + j * bw / 2
            tooltip = f"{low + i * step:.3f}–{low + (i + 1) * step:.3f}: {series[i]}"
            body.append(bar(x, top + plot_h - h, bw / 2 - 1, h, color, tooltip))
    xc = left + plot_w * (cut - low) / (high - low)
    body.append(
        f'<line x1="{xc:.1f}" y1="{top}" x2="{xc:.1f}" y2="{top + plot_h}" stroke="#111" stroke-dasharray="4 3"/>'
    )
    body.append(f'<text x="{xc + 3:.1f}" y="{top + 10}" {FONT} fill="#111">corte {cut:.2f}</text>')
    for k in range(5):
        v = low + (high - low) * k / 4
        anchor = "start" if k == 0 else "end" if k == 4 else "middle"
        body.append(
            f'<text x="{left + plot_w * k / 4:.1f}" y="{height - bottom + 14}" {FONT} text-anchor="{anchor}" '
            f'fill="#333">{v:.3f}</text>'
        )
    for j, (name, color) in enumerate((("1º candidato certo", GREEN), ("1º candidato errado", RED))):
        body.append(f'<rect x="{left + j * 200}" y="{height - 16}" width="10" height="10" fill="{color}"/>')
        body.append(f'<text x="{left + j * 200 + 14}" y="{height - 7}" {FONT} fill="#333">{name}</text>')
    return _svg_frame(width, height, title, untrained, body)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="rx-eval-table {css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure(svg: str, caption: str, untrained: bool) -> str:
    label = f" <strong>({UNTRAINED_LABEL})</strong>" if untrained else ""
    return f'<figure class="rx-eval-fig">{svg}<figcaption>{escape(caption)}{label}</figcaption></figure>'


def _top1_of(summary: Summary, manufacturer: str) -> float:
    row = summary.per_manufacturer.get(manufacturer)
    return row.top1 if row else 0.0


def render_fragment(summaries: Sequence[Summary], *, created: str = "") -> str:
    main = summaries[0]
    untrained = any(s.untrained for s in summaries)
    out: list[str] = ['<div class="rx-eval">']
    if untrained:
        out.append(
            '<p class="rx-warning rx-eval-untrained" role="alert"><strong>Atenção: modelo sem treinamento.</strong> '
            "Esta avaliação usou pesos NÃO treinados (apenas desenvolvimento e testes): os números medem o "
            "encanamento, não a capacidade de identificar implantes, e não têm valor clínico.</p>"
        )
    out.append(
        f"<p>Conjunto: <strong>{escape(main.dataset)}</strong> · {main.queries} consultas · "
        f"{main.implants} implantes · {escape(created)}</p>"
    )
    out.append("<h2>Acerto</h2>")
    out.append(
        _table(
            ["modelo", "consultas", "top-1", "top-3", "top-5", "busca p50 (ms)", "total p50 (ms)"],
            [
                [
                    s.model_id + (" (não treinado)" if s.untrained else ""),
                    s.queries,
                    _pct(s.top1),
                    _pct(s.top3),
                    _pct(s.top5),
                    s.latency_ms.search_p50,
                    s.latency_ms.total_p50,
                ]
                for s in summaries
            ],
            "rx-eval-topk",
        )
    )
    out.append(
        _figure(
            bar_chart(
                "Acerto top-k",
                ["top-1", "top-3", "top-5"],
                [(s.model_id, [s.top1, s.top3, s.top5]) for s in summaries],
                untrained=untrained,
            ),
            "Parte das consultas cujo implante certo está entre os k primeiros candidatos.",
            untrained,
        )
    )
    out.append("<h2>Por fabricante</h2>")
    manufacturers = list(main.per_manufacturer)
    out.append(
        _table(
            ["fabricante", "consultas", "top-1", "top-5"],
            [[m, v.queries, _pct(v.top1), _pct(v.top5)] for m, v in main.per_manufacturer.items()],
        )
    )
    out.append(
        _figure(
            bar_chart(
                "Top-1 por fabricante",
                manufacturers,
                [(s.model_id, [_top1_of(s, m) for m in manufacturers]) for s in summaries],
                untrained=untrained,
                width=max(640, 70 * len(manufacturers)),
            ),
            "Acerto do primeiro candidato, pelo fabricante do implante certo.",
            untrained,
        )
    )
    out.append("<h2>Pares mais confundidos</h2>")
    out.append(
        _table(
            ["implante certo", "1º candidato dado", "vezes"],
            [[p.truth, p.predicted, p.count] for p in main.confused_pairs],
        )
        if main.confused_pairs
        else "<p>Nenhuma confusão no primeiro candidato.</p>"
    )
    out.append("<h2>Rótulos de confiança</h2>")
    labels = main.confidence_labels
    out.append(
        _table(
            ["rótulo do 1º candidato", "consultas", "acerto"],
            [[level, labels[level].queries, _pct(labels[level].right)] for level in ("alta", "media", "baixa")],
        )
    )
    out.append(
        _figure(
            bar_chart(
                "Acerto por rótulo de confiança",
                ["alta", "média", "baixa"],
                [(s.model_id, [s.confidence_labels[lv].right for lv in ("alta", "media", "baixa")]) for s in summaries],
                untrained=untrained,
            ),
            "Quantas vezes o primeiro candidato está certo quando a página mostra cada rótulo.",
            untrained,
        )
    )
    hidden = main.no_convincing_match
    out.append("<h2>“Nenhuma correspondência convincente”</h2>")
    out.append(
        f"<p>Com RAIOX_MIN_SIMILARITY = {hidden.min_similarity}, {hidden.queries} consultas "
        f"({_pct(hidden.share)}) mostrariam “nenhuma correspondência convincente”; nelas o 1º candidato "
        f"estava certo {hidden.hid_right_top1} vezes e o implante certo estava entre os 5 primeiros "
        f"{hidden.hid_right_in_top5} vezes (respostas certas escondidas).</p>"
    )
    out.append(
        _figure(
            histogram(
                "Similaridade do 1º candidato: certos × errados",
                main.similarity_right,
                main.similarity_wrong,
                hidden.min_similarity,
                untrained=untrained,
            ),
            "Distribuição da similaridade do primeiro candidato; a linha tracejada é o corte atual.",
            untrained,
        )
    )
    out.append("<h2>Calibração</h2>")
    out.append(
        _table(
            ["similaridade do 1º", "consultas", "acerto"],
            [[f"{c.low:.3f}–{c.high:.3f}", c.queries, _pct(c.right)] for c in main.calibration],
        )
    )
    out.append(
        _figure(
            bar_chart(
                "Acerto por faixa de similaridade (calibração)",
                [f"{c.low:.3f}" for c in main.calibration],
                [(main.model_id, [c.right for c in main.calibration])],
                untrained=untrained,
            ),
            "Para cada faixa de similaridade do primeiro candidato, a parte de respostas certas.",
            untrained,
        )
    )
    out.append("<h2>Probabilidade calibrada (o que o dentista lê)</h2>")
    sim_ece = main.similarity_as_probability.ece if main.similarity_as_probability else None
    cal = main.calibrated
    if cal:
        out.append(
            f"<p>Calibração #{cal.calibration_id} (ajustada em {escape(cal.fitted_on)}), medida neste "
            f"conjunto: ECE {cal.ece} (a similaridade lida como probabilidade: ECE {sim_ece}); "
            f"probabilidade média do 1º candidato {_pct(cal.mean_probability)} para {_pct(cal.top1)} "
            "de acertos.</p>"
        )
        out.append(
            _table(
                ["faixa do 1º candidato", "consultas", "acerto"],
                [[band, v.queries, _pct(v.right)] for band, v in cal.bands.items()],
            )
        )
    else:
        out.append(
            "<p>Modelo ainda não calibrado: a página não mostra probabilidade. Rode "
            "<code>evaluate_matching --fit-calibration</code> e ative a calibração no admin. "
            f"(A similaridade lida como probabilidade: ECE {escape(str(sim_ece))}.)</p>"
        )
    out.append("<h2>Limiares sugeridos</h2>")
    sug, cur = main.suggested, main.current
    rows = [["RAIOX_MIN_SIMILARITY", cur.min_similarity, sug.min_similarity or "—"]]
    levels = (
        ("HIGH", cur.high_similarity, cur.high_margin, sug.high),
        ("MEDIUM", cur.medium_similarity, cur.medium_margin, sug.medium),
    )
    for key, similarity, margin, choice in levels:
        rows.append([f"RAIOX_CONFIDENCE_{key}_SIMILARITY", similarity, choice.similarity if choice else "—"])
        rows.append([f"RAIOX_CONFIDENCE_{key}_MARGIN", margin, choice.margin if choice else "—"])
    out.append(_table(["ajuste", "atual", "sugerido"], rows))
    notes = []
    for label, target, choice in (("alta", "95 %", sug.high), ("média", "80 %", sug.medium)):
        if choice:
            notes.append(f"“{label}”: precisão {_pct(choice.precision)} em {_pct(choice.coverage)} das consultas.")
        else:
            notes.append(f"“{label}”: nenhum par (similaridade, margem) chega a {target} de precisão neste conjunto.")
    out.append("<p>" + " ".join(escape(n) for n in notes) + "</p>")
    lat = main.latency_ms
    out.append("<h2>Tempo</h2>")
    out.append(
        _table(
            ["etapa", "p50 (ms)", "p95 (ms)"],
            [["embedding", lat.embed_p50, lat.embed_p95], ["busca", lat.search_p50, lat.search_p95]],
        )
    )
    if untrained:
        out.append(f'<p class="rx-warning rx-eval-untrained">{escape(UNTRAINED_LABEL)}</p>')
    out.append("</div>")
    return "".join(out)


PAGE_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
.rx-warning{background:#fef3c7;border:1px solid #f59e0b;color:#78350f;border-radius:6px;padding:10px 14px}
.rx-eval-table{border-collapse:collapse;margin:8px 0 16px}
.rx-eval-table td,.rx-eval-table th{border:1px solid #ddd;padding:4px 8px;text-align:left}
.rx-eval-fig{margin:8px 0 20px}.rx-eval-fig figcaption{font-size:12px;color:#555}
"""


def render_page(summaries: Sequence[Summary], *, created: str = "") -> str:
    title = "Avaliação da identificação — Raiox AI"
    if any(s.untrained for s in summaries):
        title += " (MODELO NÃO TREINADO)"
    return (
        f'<!doctype html><html lang="pt-BR"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{PAGE_CSS}</style></head><body><h1>{escape(title)}</h1>"
        f"{render_fragment(summaries, created=created)}</body></html>"
    )
