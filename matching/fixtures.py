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

import math
from dataclasses import dataclass, field

import cv2
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

# --- the finder's settings (measured on generated films: ``python -m bench.fixtures``) ------------
# A fixture narrower than this (original pixels across its axis) is too small to read its threads:
# it is still reported (a dentist can crop and re-send) but marked QUALITY_TOO_SMALL.
TOO_SMALL_PX = 20
# A film whose sharpness (variance of the Laplacian of the working copy, grain smoothed) is below
# BLURRED_BELOW cannot show threads; one whose contrast (1st-99th percentile spread, grey levels)
# is below FLAT_BELOW is too flat.
BLURRED_BELOW = 2.0
FLAT_BELOW = 40
# The finder works on a copy at most this many pixels on its longer side (boxes are scaled back):
# a 2000 px panoramic keeps its full resolution, the threads of a 40 px fixture survive.
WORK_MAX_SIDE = 2200
# A working copy longer than SCREEN_ABOVE (a panoramic) is first screened on a copy at most
# SCREEN_SIDE long, shrunk by a whole factor and blurred SCREEN_BLUR (the shrinking has already
# averaged the grain away); each part found there is read in a window of the working copy,
# WINDOW_PAD px around it. Its sharpness and levels are measured on one band of SHARPNESS_BAND rows
# in SHARPNESS_EVERY.
SCREEN_ABOVE = 1400
SCREEN_SIDE = 1100
SCREEN_BLUR = 0.5
WINDOW_PAD = 8
WINDOW_SHARE = 0.15  # of the screened part's pixels: a window's part under fewer is another's
SHARPNESS_BAND = 32
SHARPNESS_EVERY = 4
# A pixel is metal when brighter than the film's median plus this fraction of the spread between
# the median and the brightest 0.1 % (titanium is the most radiopaque thing on a film).
METAL_LEVEL = 0.78
# Parts less elongated than this (the moments' axes) are not read at all (a fixture, with its crown
# or not, is at least ~2 times as long as wide).
SCREEN_ELONGATION = 1.4
# A part narrower than this (working pixels) is read enlarged, up to 3 times.
ZOOM_BELOW = 64
# An enlarged part is read from the film blurred this little (the whole film's 1 px blur flattens
# the 1-2 px threads of a 40 px fixture).
FINE_BLUR = 0.6
EDGE_MARGIN = 2  # px: a box this close to the film's border is cut by it
# Threads: the outlines are detrended over THREAD_WINDOW x the width; at the best period in the
# thread band, the weaker outline's spectrum must stand THREADS_MIN times above its mean with a
# connection, THREADS_ALONE times without (generated films: fixtures down to ~2, bridges, crowns
# and film edges up to ~14, all without a connection).
THREAD_WINDOW = 0.3
# The thread's period over the width (the catalogue: pitch 12-24 px on a 110 px implant, 0.11-0.22).
THREAD_PERIOD = (0.08, 0.27)
THREADS_MIN = 2.0
THREADS_ALONE = 16.0
# The screw's run of rows is cut where its width (a running median over THREAD_WINDOW) steps by
# more than this fraction of the screw's width within 3 rows of the working copy (a narrower
# abutment, a crown's neck); the longest piece is the screw.
STEP_MIN = 0.12
# The connection's dip: the collar end's centre this far (of the film's median-to-metal spread) below
# its walls (generated films: fixtures >= 0.16; bridges, crowns, film edges <= 0.01).
CONNECTION_MIN = 0.08
# A fixture's length over its breadth (generated films: 1.95-3.42; wide tapered bodies with deep square
# threads, drawn the catalogue's way, down to 1.7; strips and bridges are longer).
ELONGATION = (1.6, 3.8)
# A part touching the picture's border whose axis is within ~30 degrees of that side (cos 30).
ALONG_BORDER = 0.87
# The apex votes (``_apex_vote``) must add up to at least this for an apex direction; below it, "unknown".
APEX_MARGIN = 1.2


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
        if array.ndim == 3 and array.dtype == np.uint8 and array.shape[2] in (3, 4):
            # The channels' mean, in integers (a float mean of a phone photo costs ~10 ms).
            rgb = np.ascontiguousarray(array[..., :3])
            return cv2.transform(rgb, np.full((1, 3), 1 / 3, np.float32)).reshape(array.shape[:2])
        if array.ndim == 3:
            array = array[..., :3].mean(axis=2)
        return np.ascontiguousarray(array.astype(np.uint8, copy=False))
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.uint8)


def find_fixtures(image: Image.Image | np.ndarray) -> FixtureReport:
    """Every implant fixture in ``image`` (see the module docstring for the conventions).

    How: the brightest class of pixels (metal: fixtures, crowns, abutments, fillings, bridges, the
    film's unexposed edge) is cut into connected parts; each part is turned so that its long axis
    is vertical and read row by row. A fixture is the stretch of rows whose both outlines carry
    threads (a crown, a bridge, a filling or a film edge has smooth outlines), widened over the
    smooth collar and apex while the width stays the body's (a crown is wider, an abutment
    narrower, both step away from it). Blobs are screened out before they are read; a part with a
    fixture's proportions, not a strip along the picture's border, needs threads at the same period
    on both outlines and the connection's darker channel at one end (or very strong threads). Narrow
    parts are read enlarged. The apex is the end away from the dark connection inside the collar,
    away from what continues past the screw (crown, abutment), and the narrower one; "unknown" when
    those votes are weak or a strong one disagrees. A large film (a panoramic) is screened on a
    copy about SCREEN_SIDE px long (film mask, levels, metal parts) and only the parts found there
    are read, each from a window of the full-resolution copy.
    """
    grey = as_grey(image)
    height, width = grey.shape
    scale = min(1.0, WORK_MAX_SIDE / max(height, width))
    raw = grey if scale == 1.0 else cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    wh, ww = raw.shape
    # A large film (a panoramic) is screened on a smaller copy: its film mask, levels and metal
    # parts; only the parts worth reading are then read from the working copy, in a window each.
    # A whole factor (OpenCV's fast area shrinking), of a copy cut to a multiple of it.
    factor = 1 if max(wh, ww) <= SCREEN_ABOVE else math.ceil(max(wh, ww) / SCREEN_SIDE)
    step = 1.0 / factor
    if factor == 1:
        work = cv2.GaussianBlur(raw, (0, 0), 1.0)  # the film's grain off: outlines and levels, not noise
        screen = work
    else:
        work = None
        cut = raw[: wh // factor * factor, : ww // factor * factor]
        small = cv2.resize(cut, (ww // factor, wh // factor), interpolation=cv2.INTER_AREA)
        screen = cv2.GaussianBlur(small, (0, 0), SCREEN_BLUR)
    film = _film_mask(screen)  # None: the whole picture is film (no light box around it)
    if work is not None:
        hist = _histogram(work, film)
        sharpness = _sharpness(work, film)
    else:  # the working copy's levels, not the shrunk copy's (shrinking dims the brightest)
        sharpness, hist = _sampled(raw, film)
    quality = _quality(hist, sharpness)
    lo, hi = _levels(hist)
    # The shrunk copy's parts, and their windows, are cut at the shrunk copy's levels (tuning seed:
    # the working copy's, sampled, lost fixtures); the quality figures are the working copy's.
    screen_lo, screen_hi = (lo, hi) if work is not None else _levels(_histogram(screen, film))
    fixtures: list[Fixture] = []
    if hi - lo >= 20:
        metal = (screen >= screen_lo + METAL_LEVEL * (screen_hi - screen_lo)).astype(np.uint8)
        if film is not None:
            metal &= film
        metal = cv2.morphologyEx(metal, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
        count, labels, stats = _components(metal)
        sh, sw = screen.shape
        read: set[tuple[int, ...]] = set()
        if step != 1.0 and film is not None:  # the film mask at the working copy's size, for the windows
            film = cv2.resize(film, (ww, wh), interpolation=cv2.INTER_NEAREST)
        for label in range(1, count):
            x, y, w, h, area = stats[label]
            if area < 40 * step * step or max(w, h) < 12 * step:
                continue
            if w > 0.85 * sw or h > 0.85 * sh:  # the film's edge, a light box: across the whole picture
                continue
            if step == 1.0:
                found = [_read_part(work, labels, label, (x, y, w, h), lo, hi, scale, raw)]
            else:
                found = _read_window(raw, film, labels, label, stats[label], step, screen_lo, screen_hi, scale, read)
            fixtures.extend(_in_original(one, scale, width, height) for one in found if one is not None)
    fixtures.sort(key=lambda f: -f.score)
    return FixtureReport(fixtures=fixtures, width=width, height=height, quality=quality)


def _histogram(grey: np.ndarray, film: np.ndarray | None) -> np.ndarray:
    return cv2.calcHist([grey], [0], film, [256], [0, 256]).ravel()


def _components(metal: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """The 8-connected parts of ``metal`` (count, labels, stats); 16-bit labels (twice as fast)
    unless a film has more parts than they can number."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(metal, connectivity=8, ltype=cv2.CV_16U)
    if count >= np.iinfo(np.uint16).max:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(metal, connectivity=8, ltype=cv2.CV_32S)
    return count, labels, stats


def _read_window(raw, film, labels, label, stat, step, lo, hi, scale, read: set) -> list[_Found]:
    """Read a part found on the screening copy from the working copy: the window around it,
    blurred as the whole copy would be, cut into metal parts again; the parts that cover the
    screened one are read (once each: ``read`` holds the parts read already)."""
    x, y, w, h, _area = (int(v) for v in stat)
    wh, ww = raw.shape
    # A blob (a filling, a crown alone) is not worth a window: the screened part's own moments,
    # with room to spare (``_read_part`` decides with SCREEN_ELONGATION on the full resolution).
    moments = cv2.moments((labels[y : y + h, x : x + w] == label).astype(np.uint8), binaryImage=True)
    if moments["m00"] > 0:
        a20, a02, a11 = (moments[k] / moments["m00"] for k in ("mu20", "mu02", "mu11"))
        spread = math.hypot((a20 - a02) / 2, a11)
        minor = math.sqrt(max(0.0, 12 * ((a20 + a02) / 2 - spread)))
        major = math.sqrt(max(0.0, 12 * ((a20 + a02) / 2 + spread)))
        if minor / step < 3 or major < 0.9 * SCREEN_ELONGATION * minor:
            return []
    pad, margin = WINDOW_PAD, 4  # the margin: the blur's reach, so the window's pixels are exact
    x0, y0 = max(0, math.floor(x / step) - pad), max(0, math.floor(y / step) - pad)
    x1, y1 = min(ww, math.ceil((x + w) / step) + pad), min(wh, math.ceil((y + h) / step) + pad)
    bx0, by0, bx1, by1 = max(0, x0 - margin), max(0, y0 - margin), min(ww, x1 + margin), min(wh, y1 + margin)
    blurred = cv2.GaussianBlur(raw[by0:by1, bx0:bx1], (0, 0), 1.0)
    work = blurred[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]
    metal = (work >= lo + METAL_LEVEL * (hi - lo)).astype(np.uint8)
    if film is not None:  # at the working copy's size
        metal &= film[y0:y1, x0:x1]
    metal = cv2.morphologyEx(metal, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    _count, window_labels, window_stats = _components(metal)
    # The window's part under the screened part's pixels.
    ys, xs = np.nonzero(labels[y : y + h, x : x + w] == label)
    wx = np.clip(((xs + x + 0.5) / step).astype(int) - x0, 0, x1 - x0 - 1)
    wy = np.clip(((ys + y + 0.5) / step).astype(int) - y0, 0, y1 - y0 - 1)
    votes = np.bincount(window_labels[wy, wx].ravel(), minlength=2)
    votes[0] = 0
    found = []
    # Each part of the window under a good share of it (two parts the shrinking had joined: both).
    for part in np.flatnonzero(votes >= max(1.0, WINDOW_SHARE * votes.sum())):
        bx, by, bw, bh, area = (int(v) for v in window_stats[part])
        key = (bx + x0, by + y0, bw, bh, area)
        if key in read or area < 40 or max(bw, bh) < 12 or bw > 0.85 * ww or bh > 0.85 * wh:
            continue
        read.add(key)
        window = (bx, by, bw, bh)
        one = _read_part(
            work, window_labels, int(part), window, lo, hi, scale, raw[y0:y1, x0:x1], origin=(x0, y0), bounds=(ww, wh)
        )
        if one is not None:
            found.append(one)
    return found


def _film_mask(work: np.ndarray) -> np.ndarray | None:
    """1 where the film is, 0 on a light box around it (a phone photo of a film); None when there is
    no light box (all of it is film). The light box is the brightest, smooth region touching the
    picture's border, brighter on average than the film's metal (whose light passes through the
    film's base). Found on a copy a quarter the size (the light box is large and smooth)."""
    h, w = work.shape
    small = cv2.resize(work, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape
    keep = np.ones_like(small, dtype=np.uint8)
    _, bright = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    for label in range(1, count):
        x, y, bw, bh, area = stats[label]
        touches = x == 0 or y == 0 or x + bw == sw or y + bh == sh
        if not touches or area < 0.04 * sh * sw:
            continue
        part = (labels == label).astype(np.uint8)
        mean, std = cv2.meanStdDev(small, mask=part)
        # Bone touching the border is bright in Otsu's split too; a light box is near white.
        if float(mean[0, 0]) >= 200 and float(std[0, 0]) < 25:
            keep[part > 0] = 0
    if keep.min() == 1:
        return None
    mask = cv2.resize(keep, (w, h), interpolation=cv2.INTER_NEAREST)
    return cv2.erode(mask, np.ones((9, 9), np.uint8))  # the film's blurred border with the box


def _levels(hist: np.ndarray) -> tuple[float, float]:
    """The film's median and its brightest 0.1 % (from the film's histogram)."""
    total = hist.sum()
    if total == 0:
        return 0.0, 0.0
    cumulative = np.cumsum(hist) / total
    return float(np.searchsorted(cumulative, 0.5)), float(np.searchsorted(cumulative, 0.999))


def _sharpness(work: np.ndarray, film: np.ndarray | None) -> float:
    """The variance of the Laplacian of the (grain-smoothed) working copy, over the film."""
    if film is not None and not film.any():
        return 0.0
    return float(cv2.meanStdDev(cv2.Laplacian(work, cv2.CV_32F), mask=film)[1][0, 0] ** 2)


def _sampled(raw: np.ndarray, film: np.ndarray | None) -> tuple[float, np.ndarray]:
    """``_sharpness`` and the histogram of a large film from one band of rows in SHARPNESS_EVERY:
    each band blurred and differentiated with the rows around it, so its pixels are exactly the
    whole working copy's (a sample of the same figures, at a fraction of the cost)."""
    h, w = raw.shape
    full = None if film is None else cv2.resize(film, (w, h), interpolation=cv2.INTER_NEAREST)
    band, margin = SHARPNESS_BAND, 4
    total = squares = count = 0.0
    hist = np.zeros(256, np.float32)
    for top in range(0, h, band * SHARPNESS_EVERY):
        a, b = max(0, top - margin), min(h, top + band + margin)
        end = min(h, top + band)
        blurred = cv2.GaussianBlur(raw[a:b], (0, 0), 1.0)
        lap = cv2.Laplacian(blurred, cv2.CV_32F)[top - a : end - a]
        rows = blurred[top - a : end - a]
        mask = None if full is None else full[top:end]
        hist += cv2.calcHist([np.ascontiguousarray(rows)], [0], mask, [256], [0, 256]).ravel()
        values = lap if mask is None else lap[mask > 0]
        values = values.astype(np.float64).ravel()
        total, squares, count = total + values.sum(), squares + (values * values).sum(), count + values.size
    if count == 0:
        return 0.0, hist
    mean = total / count
    return float(max(0.0, squares / count - mean * mean)), hist


def _quality(hist: np.ndarray, sharpness: float) -> dict:
    cumulative = np.cumsum(hist) / max(1.0, hist.sum())
    contrast = float(np.searchsorted(cumulative, 0.99) - np.searchsorted(cumulative, 0.01))
    problems = []
    if sharpness < BLURRED_BELOW:
        problems.append(QUALITY_BLURRED)
    if contrast < FLAT_BELOW:
        problems.append(QUALITY_FLAT)
    return {"sharpness": round(sharpness, 2), "contrast": round(contrast, 1), "problems": problems}


@dataclass
class _Found:
    points: np.ndarray  # the screw's pixels, (x, y) in the working copy
    apex_end: np.ndarray  # the axis's apical end (x, y)
    collar_end: np.ndarray
    apex_known: bool
    score: float
    breadth: float


def _smooth(values: np.ndarray, size: int) -> np.ndarray:
    size = max(1, int(size)) | 1
    return cv2.blur(values.astype(np.float32).reshape(-1, 1), (1, size), borderType=cv2.BORDER_REPLICATE).ravel()


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, end exclusive) of each run of True."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _read_part(work, labels, label, rect, lo, hi, scale, raw=None, origin=(0, 0), bounds=None) -> _Found | None:
    """Read one metal part (``label`` of ``labels``, bounding ``rect``) of ``work``; ``work``,
    ``labels`` and ``raw`` may be a window of the working copy at ``origin`` (its ``bounds``: the
    working copy's width and height), the part's points are then given in the copy's pixels."""
    x, y, w, h = rect
    pad = 4
    wh, ww = work.shape
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(ww, x + w + pad), min(wh, y + h + pad)
    ox, oy = origin
    full_w, full_h = bounds or (ww, wh)
    part = (labels[y0:y1, x0:x1] == label).astype(np.uint8)
    moments = cv2.moments(part, binaryImage=True)
    if moments["m00"] == 0:
        return None
    cx, cy = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    theta = 0.5 * math.atan2(2 * moments["mu11"], moments["mu20"] - moments["mu02"])
    vx, vy = math.cos(theta), math.sin(theta)  # the long axis
    # A strip along the picture's border (the film's unexposed edge, a light box's rim): touching
    # a side and running along it. A fixture cut by the edge crosses it instead.
    gx, gy = x + ox, y + oy
    if (min(gx, full_w - gx - w) <= 1 and abs(vy) > ALONG_BORDER) or (
        min(gy, full_h - gy - h) <= 1 and abs(vx) > ALONG_BORDER
    ):
        return None
    # A narrow part is read enlarged (threads of a 40 px fixture are 2-4 px deep): its outline then
    # follows the interpolated grey level, not the pixels' staircase.
    a20, a02, a11 = (moments[k] / moments["m00"] for k in ("mu20", "mu02", "mu11"))
    minor = math.sqrt(max(0.0, 12 * ((a20 + a02) / 2 - math.hypot((a20 - a02) / 2, a11))))
    major = math.sqrt(max(0.0, 12 * ((a20 + a02) / 2 + math.hypot((a20 - a02) / 2, a11))))
    if minor < 4 or major < SCREEN_ELONGATION * minor:  # a blob (a filling, a crown alone): not read
        return None
    zoom = 1 if minor >= ZOOM_BELOW else min(3, math.ceil(ZOOM_BELOW / max(1.0, minor)))
    # Turn the part so that its long axis runs down the rows: rows of `rotation` are (across, along).
    side = math.ceil(math.hypot(x1 - x0, y1 - y0) * zoom) + 4
    rotation = zoom * np.array([[vy, -vx], [vx, vy]], np.float64)
    matrix = np.hstack([rotation, (np.array([side / 2, side / 2]) - rotation @ (cx, cy)).reshape(2, 1)])
    source = work[y0:y1, x0:x1]
    if zoom > 1 and raw is not None:  # fine threads: a lighter blur than the whole film's
        source = cv2.GaussianBlur(raw[y0:y1, x0:x1], (0, 0), FINE_BLUR)
    shade = cv2.warpAffine(source, matrix, (side, side), flags=cv2.INTER_LINEAR)
    if zoom == 1:
        upright = cv2.warpAffine(part * 255, matrix, (side, side), flags=cv2.INTER_LINEAR) > 127
    else:
        grown = cv2.dilate(part, np.ones((3, 3), np.uint8)) * 255
        upright = (cv2.warpAffine(grown, matrix, (side, side), flags=cv2.INTER_LINEAR) > 127) & (
            shade >= lo + METAL_LEVEL * (hi - lo)
        )
    rows = np.flatnonzero(upright.any(axis=1))
    if rows.size < 12 * zoom:
        return None
    left = np.argmax(upright, axis=1).astype(np.float32)
    right = (side - 1 - np.argmax(upright[:, ::-1], axis=1)).astype(np.float32)
    filled = upright.any(axis=1)
    widths = np.where(filled, right - left + 1, 0).astype(np.float32)
    body = float(np.median(widths[filled]))
    if body < 4:
        return None

    # The screw: the longest stretch of rows as wide as the part's body (a crown is wider, an
    # abutment or hex narrower; small gaps, a thread's flank, do not split it).
    near = filled & (widths >= 0.72 * body) & (widths <= 1.2 * body)
    closed = cv2.morphologyEx(
        near.astype(np.uint8).reshape(-1, 1), cv2.MORPH_CLOSE, np.ones((4 * zoom + 1, 1), np.uint8)
    )
    runs = _runs(closed.ravel() > 0)
    if not runs:
        return None
    a, b = max(runs, key=lambda r: r[1] - r[0])
    reference = float(np.median(widths[a:b]))
    window = max(5, round(reference * THREAD_WINDOW))
    # An abutment a little narrower than the screw, a crown's cervical end a little wider, fall in
    # that band too: the run is cut where its width steps (threads alone do not move the width's
    # median over a thread window) and the longest piece is the screw.
    a, b = _longest_level(widths, a, b, reference, window, zoom)
    reference = float(np.median(widths[a:b]))
    small = reference / (scale * zoom) < TOO_SMALL_PX  # threads too fine to read at this size

    # Widen over the apex while it tapers steadily (a rounded or pointed tip). It never grows past
    # the run's own end (its widest row within a thread window): a crown's cervical part, widening
    # a pixel a row towards the crown, is not an apex.
    def extend(start: int, step: int) -> int:
        inner = widths[start : start + window] if step < 0 else widths[max(0, start + 1 - window) : start + 1]
        ceiling = float(inner.max()) + zoom
        i = start
        while 0 <= i + step < side:
            nxt = widths[i + step]
            if (
                nxt < 0.15 * reference
                or nxt > widths[i] + zoom
                or nxt > ceiling
                or not _tapering(widths, i, step, zoom)
            ):
                break
            i += step
        return i

    top = extend(a, -1)
    bottom = extend(b - 1, 1)
    length = bottom - top + 1
    screw_rows = widths[top : bottom + 1]
    breadth = float(np.percentile(screw_rows, 90))
    # Not a fixture's proportions: a filling, a crown seen alone, a fragment (too short), the film's
    # edge, a light box's border, a bridge's span (too long).
    if not ELONGATION[0] * breadth <= length <= ELONGATION[1] * breadth:
        return None
    threads = _thread_strength(left[top : bottom + 1], right[top : bottom + 1], reference, window)

    # Brightness: a fixture is among the brightest things on the film.
    inside = upright[top : bottom + 1]
    level = float(shade[top : bottom + 1][inside].mean())
    brightness = (level - lo) / max(1.0, hi - lo)
    if brightness < METAL_LEVEL:
        return None
    vote, cues = _apex_vote(widths, shade, side, top, bottom, breadth, screw_rows, lo, hi)
    # The connection: a darker channel down the middle of one end (every fixture has one; a bridge,
    # a crown, a strip of film edge is solid metal).
    connection = max(cues["dips"]) >= CONNECTION_MIN
    if small:  # too small to read threads: only a solid, elongated, bright rod qualifies
        solid = inside.sum() / max(1.0, length * breadth)
        if solid < 0.7 or length < 2.3 * breadth or brightness < 0.85 or not connection:
            return None
        score = 0.5
    else:
        # Threads on both outlines: weak ones with a connection, or strong ones alone (a connection
        # hidden by the abutment's screw).
        if threads < (THREADS_MIN if connection else THREADS_ALONE):
            return None
        score = (
            0.45 + 0.35 * min(1.0, threads / THREADS_ALONE) + 0.2 * min(1.0, (length / breadth - ELONGATION[0]) / 1.2)
        )
    # The apex: known only with a margin and when no strong cue says the opposite (the worker then
    # embeds both orientations).
    strong = [c for c in (cues["connection"], cues["beyond"]) if abs(c) >= 1.0]
    apex_known = abs(vote) >= APEX_MARGIN and not any(c * vote < 0 for c in strong)
    centre = side // 2
    # Back to the working copy: the screw's pixels and its two ends.
    inverse = cv2.invertAffineTransform(matrix)
    ys, xs = np.nonzero(inside)
    local = np.stack([xs, ys + top], axis=1).astype(np.float64)
    shift = (x0 + ox, y0 + oy)
    points = local @ inverse[:, :2].T + inverse[:, 2] + shift
    ends = np.array([[centre, top], [centre, bottom]], np.float64) @ inverse[:, :2].T + inverse[:, 2] + shift
    apex_end, collar_end = (ends[1], ends[0]) if vote >= 0 else (ends[0], ends[1])
    return _Found(points, apex_end, collar_end, apex_known, float(min(1.0, score)), breadth / zoom)


def _apex_vote(widths, shade, side, top, bottom, breadth, screw_rows, lo, hi) -> tuple[float, dict]:
    """Which end is the apex, from a profile of each end (positive: the apex is at the bottom rows).

    Cues: the connection (a darker channel down the middle of the collar's end, against the walls
    beside it), what continues the part past the collar (an abutment, a crown: metal at least a
    third as wide as the screw, for a few rows; an apex's tip narrows away), and the taper (the
    apex end is the narrower)."""
    length = bottom - top + 1
    spread = max(1.0, hi - lo)
    cues = {}
    # The connection: the centre's level below the walls' in each end's third.
    third = max(2, length // 3)
    centre = side // 2
    half_band = max(1, round(breadth * 0.07))
    core = shade[:, centre - half_band : centre + half_band + 1].astype(np.float32).mean(axis=1)
    offset = max(half_band + 1, round(breadth * 0.3))
    walls = (
        shade[:, max(0, centre - offset - half_band) : centre - offset + half_band + 1].astype(np.float32).mean(axis=1)
        + shade[:, centre + offset - half_band : centre + offset + half_band + 1].astype(np.float32).mean(axis=1)
    ) / 2
    dip = (walls - core) / spread  # > 0: the centre is darker than the walls
    top_dip = float(dip[top : top + third].mean())
    bottom_dip = float(dip[bottom + 1 - third : bottom + 1].mean())
    cues["connection"] = float(np.clip((top_dip - bottom_dip) * 8, -2.0, 2.0))
    # What continues past each end.
    need = max(3, round(0.05 * length))

    def beyond(start: int, step: int) -> int:
        n, i = 0, start + step
        while 0 <= i < side and widths[i] >= 0.35 * breadth and n < need:
            n, i = n + 1, i + step
        return n

    past_top, past_bottom = beyond(top, -1) >= need, beyond(bottom, 1) >= need
    cues["beyond"] = 0.0 if past_top == past_bottom else (1.5 if past_top else -1.5)
    # Taper: the apex end is the narrower.
    inner = screw_rows[len(screw_rows) // 8 : len(screw_rows) - len(screw_rows) // 8]
    cues["taper"] = 0.0
    if inner.size >= 8:
        part = inner.size // 3
        taper = (inner[:part].mean() - inner[-part:].mean()) / max(1.0, breadth)
        cues["taper"] = float(np.clip(taper * 6, -1.0, 1.0))
    cues["dips"] = (top_dip, bottom_dip)
    vote = cues["connection"] + cues["beyond"] + cues["taper"]
    return vote, cues


def _thread_strength(left: np.ndarray, right: np.ndarray, reference: float, window: int) -> float:
    """How strongly both outlines repeat with the same thread's period (THREAD_PERIOD x the width):
    for each period in that band, the weaker outline's power there (a bin and its neighbours) over
    its spectrum's mean; the best period's. Threads give the same sharp peak on both sides; a
    tooth's, crown's or bridge's smooth outline (its curvature, the threshold's noise, a neighbour's
    bump on one side) a flat spectrum or peaks that do not agree."""
    n = left.size
    if n < 16:
        return 0.0
    core = slice(n // 10, n - n // 10)
    ratios = []
    for side in (left, right):
        wave = side[core] - _smooth(side, window)[core]
        power = np.abs(np.fft.rfft(wave - wave.mean())) ** 2
        local = power + np.concatenate(([0.0], power[:-1])) + np.concatenate((power[1:], [0.0]))
        ratios.append(local / max(1e-9, 3 * power[1:].mean()))
    periods = (core.stop - core.start) / np.maximum(np.arange(ratios[0].size), 1e-9)
    band = (periods >= THREAD_PERIOD[0] * reference) & (periods <= THREAD_PERIOD[1] * reference)
    if not band.any():
        return 0.0
    return float(np.minimum(ratios[0], ratios[1])[band].max())


def _longest_level(widths: np.ndarray, a: int, b: int, reference: float, window: int, zoom: int) -> tuple[int, int]:
    """The longest piece of rows ``a:b`` without a step in width: the width's running median (over
    ``window`` rows, which evens out the threads) moving by more than STEP_MIN x ``reference``
    within a few rows. The extension over the apex (``extend``) then stops at a step down."""
    size = window | 1
    if b - a < 2 * size:
        return a, b
    padded = np.pad(widths[a:b], size // 2, mode="edge")
    level = np.median(np.lib.stride_tricks.sliding_window_view(padded, size), axis=1)
    reach = 3 * zoom
    # The rows a step spans (its start to its end ``reach`` rows later) belong to no piece.
    step = np.zeros(b - a, bool)
    for start, end in _runs(np.abs(level[reach:] - level[:-reach]) > STEP_MIN * reference):
        step[start : end + reach] = True
    if not step.any():
        return a, b
    pieces = _runs(~step)
    if not pieces:
        return a, b
    start, end = max(pieces, key=lambda piece: piece[1] - piece[0])
    return a + start, a + end


def _tapering(widths: np.ndarray, i: int, step: int, zoom: int = 1) -> bool:
    """The apex narrows steadily (a rounded or pointed tip), an abutment steps down at once."""
    back = widths[i - 3 * zoom * step] if 0 <= i - 3 * zoom * step < widths.size else widths[i]
    return widths[i] - widths[i + step] <= max(2.0, 0.12 * back)


def _in_original(found: _Found, scale: float, width: int, height: int) -> Fixture:
    points = found.points / scale
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1
    box = (max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)))
    # The axis from the screw's own pixels (PCA): the crown no longer pulls it.
    mean, vectors = cv2.PCACompute(points.astype(np.float32), mean=None, maxComponents=2)
    dx, dy = float(vectors[0][0]), float(vectors[0][1])
    axis = _axis_from_vector(dx, dy)
    along = (points - mean) @ vectors[0]
    across = (points - mean) @ vectors[1]
    apex, collar = found.apex_end / scale, found.collar_end / scale
    if not found.apex_known:
        apex_word = APEX_UNKNOWN
    else:
        apex_word = APEX_DOWN if apex[1] > collar[1] else APEX_UP
    problems = []
    breadth = float(across.max() - across.min())
    if breadth < TOO_SMALL_PX:
        problems.append(QUALITY_TOO_SMALL)
    if (
        box[0] <= EDGE_MARGIN
        or box[1] <= EDGE_MARGIN
        or box[2] >= width - EDGE_MARGIN
        or box[3] >= height - EDGE_MARGIN
    ):
        problems.append(QUALITY_CUT_BY_EDGE)
    return Fixture(
        box=box,
        axis_deg=round(axis, 2),
        apex=apex_word,
        score=round(found.score, 3),
        problems=tuple(problems),
        length=round(float(along.max() - along.min()), 1),
        breadth=round(breadth, 1),
    )


def _axis_from_vector(dx: float, dy: float) -> float:
    """Same as ``matching.canonical.axis_from_vector`` (that module imports this one)."""
    if dy < 0 or (dy == 0 and dx < 0):
        dx, dy = -dx, -dy
    angle = math.degrees(math.atan2(dx, dy))
    return 90.0 if angle <= -90.0 else angle
