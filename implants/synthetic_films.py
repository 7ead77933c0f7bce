"""Generated radiographs built from the seed catalogue's own implant drawings, with their truth.

The repository holds no real films. These put the catalogue's drawn implants (``implants.synthetic``
``implant_layer``) where real films have them, so that the fixture finder and the matching can be
measured against a known answer:

- ``lower``: a periapical of the lower jaw (apex down), tilted up to ±20°, neighbour teeth;
- ``upper``: the same for the upper jaw (the film turned over: apex up);
- ``crown``: a crown, often on an abutment, on top of the fixture (lower or upper). Crowns are as
  radiopaque as metal; the truth box is the screw only;
- ``panoramic``: a wide film of both arches, 2-4 fixtures among teeth and fillings;
- ``phone``: a photo of a lower/upper/crowned film on a light box (perspective, vignetting, colour
  cast, JPEG);
- ``empty``: teeth, fillings, metal crowns and bridge-like blocks, sometimes the film's bright
  unexposed edge, no fixture.

Everything is drawn with numpy/OpenCV from one seed, so a film is the same on every run. Each
film's truth: for every fixture its box (``x0, y0, x1, y1``, exclusive, the screw only), the angle
of its long axis from vertical (``matching.fixtures``' convention: positive when the lower end lies
to the right), which end is the apex, the implant drawn, and for a panoramic the FDI quadrant.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from django.utils.text import slugify

from implants.synthetic import HEIGHT, WIDTH, Silhouette, implant_layer, implant_top

CONDITIONS = ("lower", "upper", "crown", "panoramic", "phone", "empty")
SINGLE = ("lower", "upper", "crown", "phone")  # one fixture per film: the evaluate_matching layout

PAD = 300  # rows added above the drawing's frame, for the abutment and the crown
DRAWN_WIDTH = 110.0  # the catalogue drawings' implant width (Silhouette.width)
SCREW_LEVEL = 120  # a drawn pixel at least this bright is the screw (the truth box's extent)

# Grey levels, as on a real film: titanium and crowns/fillings (metal or zirconia) the brightest,
# enamel and dentin below them, bone, soft tissue and air darkest.
METAL = (228, 246)
DENTIN = (135, 165)
ENAMEL = (170, 195)


@dataclass
class Film:
    image: np.ndarray  # uint8, H x W grey, or H x W x 3 RGB (phone)
    condition: str
    fixtures: list[dict] = field(default_factory=list)
    jpeg_quality: int = 0  # > 0: written as JPEG

    @property
    def extension(self) -> str:
        return "jpg" if self.jpeg_quality else "png"

    def encode(self) -> bytes:
        if self.image.ndim == 3:
            array = cv2.cvtColor(self.image, cv2.COLOR_RGB2BGR)
        else:
            array = self.image
        if self.jpeg_quality:
            ok, data = cv2.imencode(".jpg", array, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        else:
            ok, data = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        assert ok
        return data.tobytes()


def catalog_items() -> list[tuple[str, str, Silhouette]]:
    """(manufacturer, implant name, silhouette) of every seed catalogue implant, in order."""
    from implants.catalog import CATALOG

    return [(m, item["name"], Silhouette(**item["drawing"])) for m, items in CATALOG.items() for item in items]


@cache
def _sprite(silhouette: Silhouette) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The drawing on a canvas PAD rows taller (room above for a crown): (float32 canvas, the
    screw's hull points, its coronal row, its apical row)."""
    layer = np.asarray(implant_layer(silhouette), dtype=np.float32)
    canvas = np.zeros((HEIGHT + PAD, WIDTH), np.float32)
    canvas[PAD:] = layer
    points = cv2.findNonZero((canvas >= SCREW_LEVEL).astype(np.uint8))
    hull = cv2.convexHull(points).reshape(-1, 2).astype(np.float32)
    return canvas, hull, float(hull[:, 1].min()), float(hull[:, 1].max())


def _rng(seed: int, *parts: object) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(" ".join(str(p) for p in parts).encode())])


def _axis_deg(dx: float, dy: float) -> float:
    """The finder's convention (``matching.canonical.axis_from_vector``; implants may not import it)."""
    if dy < 0 or (dy == 0 and dx < 0):
        dx, dy = -dx, -dy
    angle = math.degrees(math.atan2(dx, dy))
    return 90.0 if angle <= -90.0 else angle


def _bone(rng: np.random.Generator, w: int, h: int, base: float) -> np.ndarray:
    """Bone: a slow gradient of density with trabecular mottling (resized noise, no pixel loops)."""
    slow = cv2.resize(rng.random((h // 64 + 2, w // 64 + 2), np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.random((h // 5 + 2, w // 5 + 2), np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return base + 35 * slow + 22 * fine


def _rotate(points: np.ndarray, centre: tuple[float, float], degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    p = points - centre
    return np.stack([p[:, 0] * c - p[:, 1] * s, p[:, 0] * s + p[:, 1] * c], axis=1) + centre


def _tooth(
    layer: np.ndarray, rng: np.random.Generator, x: float, crest: float, tw: float, down: int, *, metal_crown=False
):
    """A natural tooth: crown above the crest (``down`` = 1: roots go down, lower jaw), root below,
    a darker pulp; sometimes a filling. Drawn into ``layer`` (float32, max-composited)."""
    tilt = rng.uniform(-8, 8)
    crown_h = tw * rng.uniform(0.75, 0.95)
    root_l = tw * rng.uniform(1.5, 2.1)
    centre = (x, crest)
    occlusal = crest - down * crown_h
    crown = np.array(
        [
            (x - tw * 0.42, crest + down * crown_h * 0.1),
            (x - tw * 0.5, crest - down * crown_h * 0.5),
            (x - tw * 0.38, occlusal),
            (x + tw * 0.38, occlusal),
            (x + tw * 0.5, crest - down * crown_h * 0.5),
            (x + tw * 0.42, crest + down * crown_h * 0.1),
        ],
        np.float32,
    )
    root = np.array(
        [
            (x - tw * 0.42, crest),
            (x + tw * 0.42, crest),
            (x + tw * 0.16, crest + down * root_l),
            (x - tw * 0.16, crest + down * root_l),
        ],
        np.float32,
    )
    pulp = np.array(
        [
            (x - tw * 0.12, crest - down * crown_h * 0.4),
            (x + tw * 0.12, crest - down * crown_h * 0.4),
            (x + tw * 0.03, crest + down * root_l * 0.9),
            (x - tw * 0.03, crest + down * root_l * 0.9),
        ],
        np.float32,
    )
    dentin = float(rng.uniform(*DENTIN))
    for poly, value in (
        (root, dentin),
        (crown, float(rng.uniform(*METAL)) if metal_crown else float(rng.uniform(*ENAMEL))),
        (pulp, dentin * 0.65),
    ):
        pts = np.round(_rotate(poly, centre, tilt)).astype(np.int32)
        cv2.fillPoly(layer, [pts], value, lineType=cv2.LINE_AA)
    if not metal_crown and rng.random() < 0.35:  # a filling: bright, small, never elongated
        fw, fh = tw * rng.uniform(0.25, 0.5), tw * rng.uniform(0.18, 0.3)
        fy = occlusal + down * crown_h * rng.uniform(0.25, 0.5)
        cv2.ellipse(
            layer,
            (int(x + rng.uniform(-0.1, 0.1) * tw), int(fy)),
            (int(fw / 2), int(fh / 2)),
            float(rng.uniform(-20, 20)),
            0,
            360,
            float(rng.uniform(*METAL)),
            -1,
            cv2.LINE_AA,
        )


def _bridge(layer: np.ndarray, rng: np.random.Generator, x0: float, x1: float, crest: float, tw: float, down: int):
    """A bridge-like block: metal, wide, rounded, at crown level."""
    h = tw * rng.uniform(0.6, 0.85)
    y0, y1 = sorted((crest - down * h * 1.1, crest - down * h * 0.1))
    r = int(h * 0.3)
    value = float(rng.uniform(*METAL))
    cv2.rectangle(layer, (int(x0 + r), int(y0)), (int(x1 - r), int(y1)), value, -1)
    cv2.rectangle(layer, (int(x0), int(y0 + r)), (int(x1), int(y1 - r)), value, -1)
    for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r), (x0 + r, y1 - r), (x1 - r, y1 - r)):
        cv2.circle(layer, (int(cx), int(cy)), r, value, -1, cv2.LINE_AA)


def _crown_sprite(silhouette: Silhouette, rng: np.random.Generator) -> np.ndarray:
    """An abutment (often) and a crown drawn above the implant's coronal end, on the sprite canvas."""
    canvas = np.zeros((HEIGHT + PAD, WIDTH), np.float32)
    cx = WIDTH / 2
    top = PAD + implant_top(silhouette)
    y = float(top) - rng.integers(0, 3)  # the implant-abutment interface: at most a hairline gap
    if rng.random() < 0.7:
        aw, ah = DRAWN_WIDTH * rng.uniform(0.5, 0.78), rng.uniform(30, 75)
        corner0, corner1 = (int(cx - aw / 2), int(y - ah)), (int(cx + aw / 2), int(y))
        cv2.rectangle(canvas, corner0, corner1, float(rng.uniform(*METAL)), -1)
        y -= ah
    cw, ch = DRAWN_WIDTH * rng.uniform(1.3, 1.75), DRAWN_WIDTH * rng.uniform(0.8, 1.05)
    value = float(rng.uniform(*METAL))
    # The crown: a rounded occlusal part on a cervical part that narrows towards the implant.
    mid = y - ch * 0.55
    cv2.ellipse(canvas, (int(cx), int(mid)), (int(cw / 2), int(ch * 0.45)), 0, 0, 360, value, -1, cv2.LINE_AA)
    neck = np.array([(cx - cw / 2, mid), (cx + cw / 2, mid), (cx + cw * 0.3, y), (cx - cw * 0.3, y)])
    cv2.fillPoly(canvas, [np.round(neck).astype(np.int32)], value, lineType=cv2.LINE_AA)
    return cv2.GaussianBlur(canvas, (0, 0), 1.1)


def _place(
    film: np.ndarray,
    silhouette: Silhouette,
    *,
    centre: tuple[float, float],
    width_px: float,
    angle: float,
    crown: np.ndarray | None = None,
) -> dict:
    """Draw the implant (and its crown) into ``film`` centred at ``centre`` (the screw's middle),
    ``width_px`` wide, turned ``angle`` degrees counter-clockwise from apex-down. Returns its truth."""
    canvas, hull, top, bottom = _sprite(silhouette)
    scale = width_px / DRAWN_WIDTH
    pivot = (WIDTH / 2, (top + bottom) / 2)
    matrix = cv2.getRotationMatrix2D(pivot, angle, scale)
    matrix[:, 2] += np.array(centre) - np.array(pivot)
    h, w = film.shape
    sprite = canvas if crown is None else np.maximum(canvas, crown)
    # Only the part of the film the sprite can reach is warped (fast on a wide panoramic).
    corners = np.array([[0, 0], [WIDTH, 0], [0, HEIGHT + PAD], [WIDTH, HEIGHT + PAD]], np.float32)
    reach = corners @ matrix[:, :2].T + matrix[:, 2]
    x0, y0 = np.floor(reach.min(axis=0)).astype(int).clip(0, [w, h])
    x1, y1 = np.ceil(reach.max(axis=0)).astype(int).clip(0, [w, h])
    if x1 > x0 and y1 > y0:
        local = matrix.copy()
        local[:, 2] -= (x0, y0)
        warped = cv2.warpAffine(sprite, local, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR)
        np.maximum(film[y0:y1, x0:x1], warped, out=film[y0:y1, x0:x1])
    return _truth(hull @ matrix[:, :2].T + matrix[:, 2], matrix, top, bottom, w, h)


def _truth(points: np.ndarray, matrix: np.ndarray, top: float, bottom: float, w: int, h: int) -> dict:
    ends = np.array([[WIDTH / 2, top], [WIDTH / 2, bottom]]) @ matrix[:, :2].T + matrix[:, 2]
    return _truth_from(points, ends, w, h)


def _truth_from(points: np.ndarray, ends: np.ndarray, w: int, h: int) -> dict:
    """Box of the screw's (transformed) hull; axis and apex from its (transformed) coronal/apical ends."""
    x0, y0 = np.floor(points.min(axis=0))
    x1, y1 = np.ceil(points.max(axis=0))
    (cx0, cy0), (ax, ay) = ends
    return {
        "box": [int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1))],
        "axis_deg": round(_axis_deg(ax - cx0, ay - cy0), 2),
        "apex": "down" if ay > cy0 else "up",
        "_hull": points,
        "_ends": ends,
    }


def _finish(film: np.ndarray, rng: np.random.Generator, *, grain: float = 5.0) -> np.ndarray:
    film = cv2.GaussianBlur(film, (0, 0), 1.0)
    film += rng.normal(0, grain, film.shape).astype(np.float32)
    return np.clip(cv2.GaussianBlur(film, (0, 0), 0.6), 0, 255).astype(np.uint8)


def _edge_strip(film: np.ndarray, rng: np.random.Generator) -> None:
    """The film's unexposed edge (a cone cut): a bright band, as bright as metal, along one side."""
    h, w = film.shape
    side = int(rng.integers(4))
    depth = rng.uniform(0.02, 0.06) * (w if side < 2 else h)
    slant = rng.uniform(-0.5, 0.5) * depth
    value = float(rng.uniform(*METAL))
    if side == 0:
        pts = [(0, 0), (depth + slant, 0), (depth - slant, h), (0, h)]
    elif side == 1:
        pts = [(w, 0), (w - depth - slant, 0), (w - depth + slant, h), (w, h)]
    elif side == 2:
        pts = [(0, 0), (w, 0), (w, depth + slant), (0, depth - slant)]
    else:
        pts = [(0, h), (w, h), (w, h - depth - slant), (0, h - depth + slant)]
    cv2.fillPoly(film, [np.round(np.array(pts)).astype(np.int32)], value, lineType=cv2.LINE_AA)


def periapical(
    rng: np.random.Generator,
    item: tuple[str, str, Silhouette] | None,
    *,
    crown: bool = False,
    width: int | None = None,
    fixture_width: float | None = None,
    edge: bool | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """A lower-jaw periapical (apex down): the implant of ``item`` (None: no fixture) with its
    neighbour teeth. Returns (grey uint8, truth)."""
    w = int(width or rng.integers(600, 1001))
    h = int(w * rng.uniform(1.25, 1.35))
    crest = h * rng.uniform(0.3, 0.4)
    film = _bone(rng, w, h, float(rng.uniform(50, 80)))
    rows = np.arange(h, dtype=np.float32)[:, None]
    film *= np.clip(0.45 + 0.55 * (rows - crest + 40) / 80, 0.45, 1.0)  # soft tissue / air above the crest
    teeth = np.zeros((h, w), np.float32)
    fw = float(fixture_width or w * rng.uniform(0.1, 0.15))
    tw = fw * rng.uniform(1.45, 1.9)
    truth = []
    if item is not None:
        x = w * rng.uniform(0.38, 0.62)
        for side in (-1, 1):  # a neighbour tooth each side, sometimes two
            gap = fw * 0.9 + tw * 0.6
            for k in range(1 + int(rng.random() < 0.4)):
                _tooth(teeth, rng, x + side * (gap + k * tw * 1.05), crest, tw, 1, metal_crown=rng.random() < 0.1)
        length = fw / DRAWN_WIDTH * 300
        angle = float(rng.uniform(-20, 20))
        cy = crest + length * 0.5 + fw * 0.1
        film = np.maximum(film, cv2.GaussianBlur(teeth, (0, 0), 1.5))
        crown_sprite = _crown_sprite(item[2], rng) if crown else None
        fixture = _place(film, item[2], centre=(x, cy), width_px=fw, angle=angle, crown=crown_sprite)
        fixture.update(manufacturer=item[0], implant=item[1])
        truth.append(fixture)
    else:
        x = w * rng.uniform(0.05, 0.25)
        while x < w * 0.95:
            _tooth(teeth, rng, x, crest, tw, 1, metal_crown=rng.random() < 0.25)
            x += tw * rng.uniform(1.05, 1.3)
        if rng.random() < 0.6:
            x0 = w * rng.uniform(0.1, 0.4)
            _bridge(teeth, rng, x0, x0 + tw * rng.uniform(2.0, 3.0), crest, tw, 1)
        film = np.maximum(film, cv2.GaussianBlur(teeth, (0, 0), 1.5))
    if edge if edge is not None else rng.random() < 0.3:
        _edge_strip(film, rng)
    return _finish(film, rng), truth


def _flip(image: np.ndarray, truth: list[dict]) -> tuple[np.ndarray, list[dict]]:
    """The film turned over (upper jaw): apex up, the axis mirrored."""
    h = image.shape[0]
    out = []
    for t in truth:
        hull = t["_hull"] * (1, -1) + (0, h)
        ends = t["_ends"] * (1, -1) + (0, h)
        flipped = _truth_from(hull, ends, image.shape[1], h)
        out.append({**t, **flipped})
    return np.ascontiguousarray(image[::-1]), out


def panoramic(rng: np.random.Generator, items: list[tuple[str, str, Silhouette]]) -> tuple[np.ndarray, list[dict]]:
    """Both arches on a wide film; ``items`` replace teeth (upper ones apex up). (grey, truth)"""
    w = int(rng.integers(1800, 2201))
    h = int(w * rng.uniform(0.48, 0.53))
    film = _bone(rng, w, h, float(rng.uniform(45, 70)))
    mid = h * rng.uniform(0.47, 0.53)
    xs = (np.arange(w, dtype=np.float32) - w / 2) / (w / 2)
    curve = rng.uniform(0.04, 0.09) * h
    # The occlusal plane smiles; the airway and the space between the arches are darker.
    film *= np.clip(np.abs(np.arange(h, dtype=np.float32)[:, None] - mid) / (0.08 * h), 0.5, 1.0)
    n_teeth = 14
    margin = w * 0.12
    tw = (w - 2 * margin) / n_teeth * rng.uniform(0.8, 0.9)
    slots = [(arch, k) for arch in (0, 1) for k in range(n_teeth)]
    chosen = set(rng.choice(len(slots), size=len(items), replace=False).tolist()) if items else set()
    teeth = np.zeros((h, w), np.float32)
    fixtures = []
    for n, (arch, k) in enumerate(slots):
        x = margin + (k + 0.5) * (w - 2 * margin) / n_teeth
        occ = mid + curve * (xs[int(x)] ** 2) + (-1 if arch == 0 else 1) * h * 0.012
        down = -1 if arch == 0 else 1  # upper arch: roots go up
        crest = occ + down * tw * 0.85
        if n in chosen:
            fixtures.append((x, crest, down))
        elif rng.random() < 0.9:
            _tooth(teeth, rng, x, crest, tw * rng.uniform(0.85, 1.0), down, metal_crown=rng.random() < 0.08)
    film = np.maximum(film, cv2.GaussianBlur(teeth, (0, 0), 1.5))
    truth = []
    for item, (x, crest, down) in zip(items, fixtures, strict=True):
        fw = float(rng.uniform(40, 80))
        length = fw / DRAWN_WIDTH * 300
        angle = float(rng.uniform(-12, 12)) + (180 if down < 0 else 0)
        cy = crest + down * (length * 0.5 + fw * 0.1)
        crown_sprite = _crown_sprite(item[2], rng) if rng.random() < 0.4 else None
        fixture = _place(film, item[2], centre=(x, cy), width_px=fw, angle=angle, crown=crown_sprite)
        # FDI quadrant: the patient's right is the viewer's left (1 upper right ... 4 lower right).
        quadrant = (1 if x < w / 2 else 2) if down < 0 else (4 if x < w / 2 else 3)
        fixture.update(manufacturer=item[0], implant=item[1], quadrant=quadrant)
        truth.append(fixture)
    return _finish(film, rng, grain=4.0), truth


def phone_photo(rng: np.random.Generator, grey: np.ndarray, truth: list[dict]) -> tuple[np.ndarray, list[dict]]:
    """A phone photo of the film on a light box: the film, skewed by perspective, lit from behind
    (clear film = bright), the light box's border around it, vignetting and a colour cast. RGB."""
    fh, fw = grey.shape
    pw, ph = int(fw * rng.uniform(1.15, 1.3)), int(fh * rng.uniform(1.12, 1.25))
    mx, my = (pw - fw) / 2, (ph - fh) / 2
    src = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float32)
    jitter = rng.uniform(-0.06, 0.06, (4, 2)) * (fw, fh)
    dst = (src + np.array([mx, my]) + jitter).astype(np.float32)
    homography = cv2.getPerspectiveTransform(src, dst)
    transmit = 0.07 + 0.86 * grey.astype(np.float32) / 255
    inside = cv2.warpPerspective(np.ones_like(transmit), homography, (pw, ph), flags=cv2.INTER_LINEAR)
    film = cv2.warpPerspective(transmit, homography, (pw, ph), flags=cv2.INTER_LINEAR)
    light = film + (1 - inside)  # the bare light box is fully bright
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
    r2 = ((xx - pw / 2 - rng.uniform(-0.1, 0.1) * pw) / (pw / 2)) ** 2 + ((yy - ph / 2) / (ph / 2)) ** 2
    light *= 1 - rng.uniform(0.2, 0.4) * r2 / 2
    cast = rng.choice([(1.0, 0.95, 0.82), (0.85, 0.95, 1.0), (1.0, 0.92, 0.95), (0.95, 1.0, 0.9)])
    photo = np.stack([light * 250 * c for c in cast], axis=-1)
    photo = cv2.GaussianBlur(photo, (0, 0), rng.uniform(0.6, 1.2))
    photo += rng.normal(0, 3, photo.shape).astype(np.float32)
    out = []
    for t in truth:
        hull = cv2.perspectiveTransform(t["_hull"].reshape(-1, 1, 2).astype(np.float32), homography).reshape(-1, 2)
        ends = cv2.perspectiveTransform(t["_ends"].reshape(-1, 1, 2).astype(np.float32), homography).reshape(-1, 2)
        out.append({**t, **_truth_from(hull, ends, pw, ph)})
    return np.clip(photo, 0, 255).astype(np.uint8), out


def make_film(condition: str, index: int, *, seed: int = 0) -> Film:
    """Film ``index`` of ``condition``, the same for the same (seed, condition, index)."""
    rng = _rng(seed, condition, index)
    items = catalog_items()
    item = items[(index + seed * 7) % len(items)]
    if condition in ("lower", "upper"):
        image, truth = periapical(rng, item)
        if condition == "upper":
            image, truth = _flip(image, truth)
        return _film(image, condition, truth)
    if condition == "crown":
        image, truth = periapical(rng, item, crown=True)
        if index % 2:
            image, truth = _flip(image, truth)
        return _film(image, condition, truth)
    if condition == "panoramic":
        count = int(rng.integers(2, 5))
        chosen = [items[int(k)] for k in rng.choice(len(items), size=count, replace=False)]
        image, truth = panoramic(rng, chosen)
        return _film(image, condition, truth)
    if condition == "phone":
        image, truth = periapical(rng, item, crown=rng.random() < 0.3, width=int(rng.integers(600, 900)))
        if index % 2:
            image, truth = _flip(image, truth)
        photo, truth = phone_photo(rng, image, truth)
        return _film(photo, condition, truth, jpeg_quality=int(rng.integers(60, 86)))
    if condition == "empty":
        if index % 3 == 2:
            image, truth = panoramic(rng, [])
        else:
            image, truth = periapical(rng, None, edge=rng.random() < 0.5)
            if index % 2:
                image, truth = _flip(image, truth)
        return _film(image, condition, truth)
    raise ValueError(f"unknown condition {condition!r}")


def _film(image: np.ndarray, condition: str, truth: list[dict], *, jpeg_quality: int = 0) -> Film:
    clean = [{k: v for k, v in t.items() if not k.startswith("_")} for t in truth]
    return Film(image=image, condition=condition, fixtures=clean, jpeg_quality=jpeg_quality)


def film_path(film: Film, index: int) -> str:
    """Where a film goes under the output folder: single-fixture films in the evaluate_matching
    layout (``<condition>/<manufacturer>/<implant>/<n>``), the others by number."""
    name = f"{index + 1}.{film.extension}"
    if film.condition in SINGLE and len(film.fixtures) == 1:
        f = film.fixtures[0]
        return f"{film.condition}/{slugify(f['manufacturer'])}/{slugify(f['implant'])}/{name}"
    return f"{film.condition}/{name}"


def write_films(out_dir: Path, *, films: int, seed: int = 0, conditions: tuple[str, ...] = CONDITIONS) -> int:
    """``films`` films per condition under ``out_dir``, and ``out_dir/truth.json``. Returns the count."""
    entries = []
    for condition in conditions:
        for index in range(films):
            film = make_film(condition, index, seed=seed)
            relative = film_path(film, index)
            target = out_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(film.encode())
            entries.append({"file": relative, "condition": condition, "fixtures": film.fixtures})
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "truth.json").write_text(json.dumps({"seed": seed, "films": entries}, indent=1, ensure_ascii=False))
    return len(entries)


# --- a catalogue picture made to look like a film (train_matcher's augmentations) ----------------
# ``matching.training`` learns from the catalogue's pictures and the confirmed cases, not from these
# generated films (a real catalogue has pictures, not drawings): each picture is turned into what
# a dentist's film does to an implant, with this generator's own pieces — a crown on top, bone
# around it, the jaw's tilt and the film's scale and crop, the upper jaw's turn (apex up), a phone
# photo's perspective, blur, grain and contrast — before the canonical view frames it as the worker
# would. The pictures' implant is bright on a darker background, apex down.


def _implant_extent(grey: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top row, bottom row, left, right) of the picture's brightest blob (the implant)."""
    mask = grey >= max(SCREW_LEVEL + 60, float(np.percentile(grey, 97)) - 10)
    rows, cols = np.nonzero(mask)
    if rows.size < 50:
        return None
    return int(rows.min()), int(rows.max()), int(np.percentile(cols, 2)), int(np.percentile(cols, 98))


def _add_crown(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Room above the implant, an abutment sometimes, and a crown as radiopaque as metal on top."""
    extent = _implant_extent(grey)
    if extent is None:
        return grey
    top, _bottom, left, right = extent
    width = max(8, right - left)
    pad = int(width * 1.4)
    background = float(np.median(np.concatenate([grey[:4].ravel(), grey[-4:].ravel()])))
    room = np.full((pad, grey.shape[1]), background, np.float32)
    room += rng.normal(0, 4, room.shape).astype(np.float32)
    film = np.vstack([room, grey.astype(np.float32)])
    top += pad
    cx = (left + right) / 2
    layer = np.zeros_like(film)
    rise = 0.0
    if rng.random() < 0.6:  # an abutment between the fixture and the crown
        rise = width * rng.uniform(0.25, 0.5)
        half = width * rng.uniform(0.25, 0.4)
        cv2.rectangle(
            layer, (int(cx - half), int(top - rise)), (int(cx + half), int(top)), float(rng.uniform(205, 225)), -1
        )
    crown_w = width * rng.uniform(1.3, 1.9) / 2
    crown_h = width * rng.uniform(0.45, 0.8) / 2
    centre = (int(cx + rng.uniform(-0.1, 0.1) * width), int(top - rise - crown_h * 0.8))
    cv2.ellipse(
        layer, centre, (int(crown_w), int(crown_h)), float(rng.uniform(-8, 8)), 0, 360, float(rng.uniform(*METAL)), -1
    )
    film = np.maximum(film, cv2.GaussianBlur(layer, (0, 0), 1.2))
    return np.clip(film, 0, 255).astype(np.uint8)


def film_like(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``grey`` (a catalogue picture, uint8, apex down) as a film might show it. Returns uint8 grey."""
    image = grey
    if rng.random() < 0.4:
        image = _add_crown(image, rng)
    h, w = image.shape
    film = image.astype(np.float32)
    # Bone around the implant: the picture's darker pixels take a film's trabecular texture.
    if rng.random() < 0.6:
        bone = _bone(rng, w, h, float(rng.uniform(50, 90)))
        dark = film < float(np.percentile(film, 80))
        film = np.where(dark, film * rng.uniform(0.3, 0.7) + bone * rng.uniform(0.3, 0.7), film)
    # The jaw's tilt, the film's scale and where it was cropped.
    angle = float(rng.uniform(-20, 20))
    scale = float(rng.uniform(0.55, 1.05))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-0.08, 0.08, 2) * (w, h)
    film = cv2.warpAffine(film, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    # Contrast and exposure.
    film = np.clip(film, 0, 255) / 255.0
    film = film ** float(rng.uniform(0.7, 1.45))
    film = (film - film.mean()) * float(rng.uniform(0.75, 1.25)) + film.mean() + float(rng.uniform(-0.06, 0.06))
    film = np.clip(film * 255, 0, 255)
    if rng.random() < 0.5:
        film = cv2.GaussianBlur(film, (0, 0), float(rng.uniform(0.4, 1.8)))
    out = _finish(film.astype(np.float32), rng, grain=float(rng.uniform(1.0, 8.0)))
    turn = rng.random()
    if turn < 0.25:
        out = np.ascontiguousarray(out[::-1, ::-1])  # turned 180°
    elif turn < 0.5:
        out = np.ascontiguousarray(out[::-1])  # the upper jaw's film: turned over, apex up
    if rng.random() < 0.2:  # a phone photo of the film on a light box (perspective, colour, JPEG)
        photo, _ = phone_photo(rng, out, [])
        out = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    if rng.random() < 0.25:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(55, 90))])
        if ok:
            out = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    return out
