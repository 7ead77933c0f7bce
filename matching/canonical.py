"""The canonical view: how every picture is framed before the model sees it (worker only).

One function for catalogue pictures, confirmed cases and dentists' films alike: the fixture is
cropped with a fixed margin, turned so that its long axis is vertical with the apex down, and its
contrast normalised (CLAHE) over the crop. A model compares like with like only if both sides are
framed the same way: crops made differently from the references score near chance whatever the
weights (the closest comparable system measured 0-3 % top-1 against 87 %), and an upper-jaw film
shows its implant apex up.

``PREPROCESS_VERSION`` is part of the model id (``matching.embedder.ModelSpec.model_id``): changing
anything here — or in the finder (which fixture a catalogue picture is framed by), or the centre
below — changes the vectors, so bump it; the workers then run a new model id, the search
sees only vectors of that id, and ``manage.py reembed`` brings the catalogue over (no mixed
vectors).

Where the finder cannot tell which end is the apex, ``canonical_views`` gives both orientations;
the worker embeds both and keeps the better match (the result says so).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from matching.fixtures import (
    APEX_DOWN,
    APEX_UNKNOWN,
    APEX_UP,
    QUALITY_CODES,
    Fixture,
    FixtureReport,
    as_grey,
    find_fixtures,
)

# fx2: large films are screened on a smaller copy first; fx3: the screw's rows are cut where the width
# steps (an abutment, a crown's neck) and never widen into a crown (matching.fixtures).
PREPROCESS_VERSION = "fx3"

VIEW_SIZE = 224  # the model's input side: the view is square so CLIP's centre crop keeps all of it
MARGIN = 0.12  # of the fixture's length, on every side
CLAHE_CLIP = 2.0
CLAHE_TILES = (4, 4)


@dataclass(frozen=True)
class CanonicalView:
    """A picture as the model must see it. ``Embedder.embed_images`` embeds only these (a bare
    picture is framed as a catalogue picture first: ``reference_view``)."""

    image: Image.Image  # RGB, VIEW_SIZE × VIEW_SIZE
    fixture: Fixture | None  # None: no fixture was found, the whole picture was framed
    turned: bool = False  # turned 180° from the finder's apex (the other orientation)


def whole_picture(width: int, height: int, *, apex: str = APEX_DOWN) -> Fixture:
    """The whole picture taken as one upright fixture (a picture where the finder found none, a
    region the dentist marked around an implant the finder missed)."""
    return Fixture(box=(0, 0, width, height), axis_deg=0.0, apex=apex, score=0.0, length=float(height), breadth=width)


def _clahe() -> cv2.CLAHE:
    return cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=CLAHE_TILES)


def canonical_view(image: Image.Image | np.ndarray, fixture: Fixture, *, turn: bool = False) -> CanonicalView:
    """``fixture`` of ``image`` in the canonical framing; ``turn``: the other orientation (apex
    where the finder put the crown), for an uncertain apex."""
    grey = as_grey(image)
    cx, cy = fixture.centre
    side = max(8.0, fixture.long_side * (1 + 2 * MARGIN))
    scale = VIEW_SIZE / side
    if scale < 0.5:
        # Shrinking a lot in one warp aliases the threads away: area-average first.
        factor = min(1.0, 2 * scale)
        grey = cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        cx, cy, scale = cx * factor, cy * factor, scale / factor
    # axis_deg > 0: the lower end lies to the right; turning the picture clockwise by that angle
    # (OpenCV's angles are counter-clockwise) makes the axis vertical.
    angle = -float(fixture.axis_deg)
    if (fixture.apex == APEX_UP) != bool(turn):
        angle += 180.0
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    matrix[0, 2] += VIEW_SIZE / 2 - cx
    matrix[1, 2] += VIEW_SIZE / 2 - cy
    view = cv2.warpAffine(
        grey, matrix, (VIEW_SIZE, VIEW_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    view = _clahe().apply(view)
    return CanonicalView(image=Image.fromarray(view).convert("RGB"), fixture=fixture, turned=bool(turn))


def canonical_views(image: Image.Image | np.ndarray, fixture: Fixture) -> list[CanonicalView]:
    """The view of ``fixture``, and the turned one too when its apex end is uncertain."""
    views = [canonical_view(image, fixture)]
    if fixture.apex == APEX_UNKNOWN:
        views.append(canonical_view(image, fixture, turn=True))
    return views


def reference_view(image: Image.Image | np.ndarray) -> CanonicalView:
    """A catalogue picture (or a confirmed case) framed canonically: its best-scored fixture, apex
    down when the finder cannot tell (catalogue pictures are framed apex down); the whole picture
    when no fixture is found."""
    grey = as_grey(image)
    report = find_fixtures(grey)
    if not report.fixtures:
        return canonical_view(grey, whole_picture(grey.shape[1], grey.shape[0]))
    best = max(report.fixtures, key=lambda f: f.score)
    if best.apex == APEX_UNKNOWN:
        best = Fixture(**{**best.__dict__, "apex": APEX_DOWN})
    return canonical_view(grey, best)


def axis_from_vector(dx: float, dy: float) -> float:
    """``axis_deg`` of an axis with direction ``(dx, dy)`` in image coordinates (y down)."""
    if dy < 0 or (dy == 0 and dx < 0):
        dx, dy = -dx, -dy
    angle = math.degrees(math.atan2(dx, dy))
    return 90.0 if angle <= -90.0 else angle


def fixture_views(image: Image.Image | np.ndarray, fixture: Fixture | None) -> list[CanonicalView]:
    """What the worker embeds for one implant of a film: the canonical view(s) of ``fixture``, or
    of the whole picture in both orientations when there is no fixture to go by (a region the
    dentist marked around an implant the finder missed)."""
    if fixture is None:
        grey = as_grey(image)
        fixture = whole_picture(grey.shape[1], grey.shape[0], apex=APEX_UNKNOWN)
    return canonical_views(image, fixture)


@dataclass(frozen=True)
class Answer:
    """How a picture is answered from what the finder saw in it (``answer``)."""

    plan: str  # "none" (a film, nothing found), "one" (views to search), "several" (one region each)
    views: list[CanonicalView]  # plan "one": the view(s) to embed (two: the apex end is uncertain)
    problems: list[str]  # quality codes, in QUALITY_CODES order
    fixtures: list[Fixture]  # the finder's, best first

    @property
    def both_orientations(self) -> bool:
        return len(self.views) > 1


def ordered_problems(codes: object) -> list[str]:
    found = set(codes)  # type: ignore[call-overload]
    return [code for code in QUALITY_CODES if code in found]


def answer(
    image: Image.Image | np.ndarray, report: FixtureReport, *, region: bool, carried: Sequence[str] = ()
) -> Answer:
    """How the worker answers a picture, and so how evaluation frames it (one rule, one place):

    - a region (the dentist's, the crop tool's or one cut around a fixture the finder found on the
      film): its best fixture, else the whole region with the apex end unknown (an implant is
      there); ``carried``: quality problems the region brings from its film;
    - a film with no fixture: nothing to search ("nothing found");
    - a film with one fixture: that fixture's view(s);
    - a film with several: one region per fixture (each then answered as a region).
    """
    grey = as_grey(image)
    fixtures = sorted(report.fixtures, key=lambda f: -f.score)
    film_problems = list(report.quality.get("problems", []))
    if region:
        best = fixtures[0] if fixtures else None
        problems = ordered_problems([*film_problems, *(best.problems if best else ()), *carried])
        target = best or whole_picture(grey.shape[1], grey.shape[0], apex=APEX_UNKNOWN)
        return Answer("one", canonical_views(grey, target), problems, fixtures)
    if not fixtures:
        return Answer("none", [], ordered_problems(film_problems), fixtures)
    if len(fixtures) == 1:
        return Answer("one", canonical_views(grey, fixtures[0]), report.problems, fixtures)
    return Answer("several", [], ordered_problems(film_problems), fixtures)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --- centring (hubness) ---------------------------------------------------------------------------
# Measured on generated films with the untrained model (issue 20, bench/RESULTS.md): one implant
# was the first answer for three quarters of the films whatever they showed — a "hub", the
# reference closest to the direction every embedding shares. The documented correction is to centre
# the embedding space (Suzuki et al. 2013, "Centering similarity measures to reduce hubs"):
# subtract the data's mean before the cosine. The mean must be the same in every process and for
# every vector of a model id, or vectors would be mixed; the catalogue's own mean drifts as staff
# add pictures. So the centre is the mean embedding of a fixed probe: canonical views of generated
# films (``implants.synthetic_films``, fixed seed, framed by their truth so the finder's quality
# does not move it), computed once per process by the embedder. It belongs to PREPROCESS_VERSION.

CENTRE_SEED = 2026
CENTRE_FILMS = {"lower": 3, "upper": 3, "crown": 3, "panoramic": 3}


def centre_probe_views() -> list[CanonicalView]:
    """The fixed probe whose mean embedding is the centre (see above): 20-odd fixtures."""
    from implants.synthetic_films import make_film

    views = []
    for condition, count in CENTRE_FILMS.items():
        for index in range(count):
            film = make_film(condition, index, seed=CENTRE_SEED)
            for truth in film.fixtures:
                fixture = Fixture(
                    box=tuple(int(v) for v in truth["box"]),
                    axis_deg=float(truth["axis_deg"]),
                    apex=truth["apex"],
                    score=1.0,
                )
                views.append(canonical_view(film.image, fixture))
    return views
