"""The fixture finder: every implant fixture in a radiograph (worker processes only).

``find_fixtures(image)`` returns a ``FixtureReport``: the fixtures found (the screw only, never
the crown or abutment above it), each with its bounding box in the image's own pixels, the angle
of its long axis, which end is the apex and a score, plus the film's quality figures.

Conventions (shared by the canonical view, the result JSON and ``manage.py find_fixtures``):

- ``box`` is ``(x0, y0, x1, y1)``, integers, ``x1``/``y1`` exclusive, in the pixels of the image
  given (the stored film), never a resized copy.
- ``axis_deg`` is the long axis's angle from the image's vertical, in degrees, in ``(-90, 90]``:
  0 for an upright fixture, positive when the axis's lower end lies to the right of its upper
  end (the fixture leans like "\\").
- ``apex`` is ``"down"`` when the apex is the axis's lower end (lower jaw, the catalogue's framing),
  ``"up"`` for the upper end (upper jaw), ``"unknown"`` when the finder cannot tell.
- ``score`` is in ``[0, 1]``; fixtures are listed best first; the dentist reads them numbered left to right
  (``FixtureReport.numbered``).

Quality problems are codes (``QUALITY_*``); the Portuguese the dentist reads lives with the result
(``submissions.fixtures``), so the page never needs this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

# Quality problem codes: a fixture too small to read, cut by the film's edge; a film too blurred
# or too flat (no contrast) to show threads.
QUALITY_TOO_SMALL = "too_small"
QUALITY_CUT_BY_EDGE = "cut_by_edge"
QUALITY_BLURRED = "blurred"
QUALITY_FLAT = "flat"
QUALITY_CODES = (QUALITY_TOO_SMALL, QUALITY_CUT_BY_EDGE, QUALITY_BLURRED, QUALITY_FLAT)

APEX_DOWN, APEX_UP, APEX_UNKNOWN = "down", "up", "unknown"


@dataclass(frozen=True)
class Fixture:
    box: tuple[int, int, int, int]
    axis_deg: float
    apex: str
    score: float
    problems: tuple[str, ...] = ()  # this fixture's quality problems (codes)
    # Its extent along and across the long axis, in pixels (0: unknown, estimated from the box).
    length: float = 0.0
    breadth: float = 0.0

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def long_side(self) -> float:
        """The fixture's length along its axis (the box's longer side when the finder gave none)."""
        return float(self.length) if self.length > 0 else float(max(self.width, self.height))

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def as_json(self) -> dict:
        """What the result JSON and ``find_fixtures --json`` carry (boxes only, no patient data)."""
        return {
            "box": [int(v) for v in self.box],
            "axis_deg": round(float(self.axis_deg), 1),
            "apex": self.apex,
            "score": round(float(self.score), 3),
        }


@dataclass(frozen=True)
class FixtureReport:
    fixtures: list[Fixture]
    width: int
    height: int
    quality: dict = field(default_factory=dict)  # figures + "problems": film-level codes

    @property
    def problems(self) -> list[str]:
        """Every quality problem of the film and of its fixtures, once each, in code order."""
        found = set(self.quality.get("problems", []))
        for fixture in self.fixtures:
            found.update(fixture.problems)
        return [code for code in QUALITY_CODES if code in found]

    def numbered(self) -> list[Fixture]:
        """The fixtures in the order the dentist reads them: left to right on the film."""
        return sorted(self.fixtures, key=lambda f: (f.centre[0], f.centre[1]))


def as_grey(image: Image.Image | np.ndarray) -> np.ndarray:
    """An 8-bit single-channel array of ``image`` (PIL or numpy)."""
    if isinstance(image, np.ndarray):
        array = image
        if array.ndim == 3:
            array = array[..., :3].mean(axis=2)
        return np.ascontiguousarray(array.astype(np.uint8, copy=False))
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.uint8)


def find_fixtures(image: Image.Image | np.ndarray) -> FixtureReport:
    """Every implant fixture in ``image`` (see the module docstring for the conventions)."""
    # PROVISIONAL (not committed): the brightest elongated component.
    import cv2

    grey = as_grey(image)
    h, w = grey.shape
    blur = cv2.GaussianBlur(grey, (5, 5), 0)
    thr = max(float(np.percentile(blur, 97)), 180.0)
    mask = (blur >= thr).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    out = []
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if area < 200:
            continue
        ys, xs = np.nonzero(labels[y : y + bh, x : x + bw] == i)
        pts = np.stack([xs + x, ys + y], axis=1).astype(np.float32)
        _centre, (rw, rh), _a = cv2.minAreaRect(pts)
        length, breadth = max(rw, rh), min(rw, rh)
        if breadth <= 0 or length / breadth < 1.8:
            continue
        vx, vy = cv2.fitLine(pts, cv2.DIST_L2, 0, 0.01, 0.01).ravel()[:2]
        from matching.canonical import axis_from_vector

        out.append(
            Fixture(
                box=(int(x), int(y), int(x + bw), int(y + bh)),
                axis_deg=axis_from_vector(float(vx), float(vy)),
                apex=APEX_UNKNOWN,
                score=min(1.0, area / (w * h) * 20),
                length=float(length),
                breadth=float(breadth),
            )
        )
    return FixtureReport(fixtures=out, width=w, height=h, quality={"problems": []})
