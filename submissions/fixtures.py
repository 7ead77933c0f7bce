"""What the dentist is told about the fixtures the worker found in a film, in one home.

The worker's finder (``matching.fixtures``, worker only) reports quality problems as codes; their
Portuguese lives here, one message per code, read by the result page, the JSON answers and the
e-mail. Also the two rules about found fixtures that the submissions side applies when it turns
them into regions: the box a fixture's region is cut with (a margin around the screw, inside the
film, at least ``RAIOX_MIN_IMAGE_SIDE``) and the tooth position it suggests on a panoramic (the
FDI quadrant from the film's halves, a suggestion only, never the dentist's ``tooth``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.conf import settings
from django.utils.translation import gettext_lazy as _

# One message per quality code (the codes are ``matching.fixtures.QUALITY_*``; a test checks that
# every code has its message). What the dentist should do, not what went wrong.
QUALITY_MESSAGES = {
    "too_small": _(
        "O implante aparece pequeno demais para ler as roscas. "
        "Envie uma periapical ou amplie a região do implante antes de enviar."
    ),
    "cut_by_edge": _("Envie uma periapical com o implante inteiro, do colar ao ápice."),
    "blurred": _("A imagem está tremida ou desfocada. Envie o arquivo original da radiografia, sem fotografar a tela."),
    "flat": _(
        "A imagem tem pouco contraste para mostrar as roscas. Envie o arquivo original, sem filtros nem compressão."
    ),
}

NO_FIXTURE_FOUND = _("Não encontramos um implante nesta radiografia.")
BOTH_ORIENTATIONS = _("A orientação do implante não pôde ser determinada; comparamos as duas.")

# A region cut around a found fixture: this share of the fixture's longer side on every side.
REGION_MARGIN = 0.25
# A film at least this much wider than tall is read as a panoramic (the quadrant can be told).
PANORAMIC_ASPECT = 1.6


def quality_messages(codes: Iterable[str]) -> list[dict]:
    """``[{"code", "message"}]`` for the codes, in the order given, unknown codes left out."""
    return [{"code": code, "message": str(QUALITY_MESSAGES[code])} for code in codes if code in QUALITY_MESSAGES]


def region_box(box: Sequence[int], width: int, height: int) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` of the region cut around a fixture box ``(x0, y0, x1, y1)``: the box grown
    by ``REGION_MARGIN`` of its longer side, inside the film, at least ``RAIOX_MIN_IMAGE_SIDE`` on
    each side where the film allows it."""
    x0, y0, x1, y1 = (int(v) for v in box)
    pad = round(REGION_MARGIN * max(x1 - x0, y1 - y0))
    side = settings.RAIOX_MIN_IMAGE_SIDE

    def span(lo: int, hi: int, limit: int) -> tuple[int, int]:
        lo, hi = max(0, lo - pad), min(limit, hi + pad)
        missing = side - (hi - lo)
        if missing > 0:  # grow around the centre, then push back inside the film
            lo, hi = lo - missing // 2, hi + missing - missing // 2
            if lo < 0:
                lo, hi = 0, min(limit, hi - lo)
            if hi > limit:
                lo, hi = max(0, lo - (hi - limit)), limit
        return lo, hi

    left, right = span(x0, x1, width)
    top, bottom = span(y0, y1, height)
    return left, top, right - left, bottom - top


def suggested_quadrant(box: Sequence[int], width: int, height: int) -> int | None:
    """The FDI quadrant (1-4) of a fixture on a panoramic, from the film's halves; None when the
    film is not a panoramic (a periapical does not tell the side). In a standard panoramic the
    patient's right is the film's left: upper left of the film is quadrant 1, upper right 2, lower
    right 3, lower left 4."""
    if width < PANORAMIC_ASPECT * height:
        return None
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    upper, films_left = cy < height / 2, cx < width / 2
    if upper:
        return 1 if films_left else 2
    return 4 if films_left else 3
