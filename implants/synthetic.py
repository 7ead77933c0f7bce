"""Plausible, deterministic radiograph-like pictures of an implant, for the seed catalogue.

The repository holds no real radiographs. These drawings give each implant system a silhouette that
differs by what a dentist reads on an X-ray — taper, thread pitch and depth, apex, collar and
connection — so the system can be exercised end to end. Staff replace them with real images.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 320, 480


@dataclass(frozen=True)
class Silhouette:
    taper: float  # bottom width / top width (1.0 = parallel walls)
    thread_pitch: int  # px between threads
    thread_depth: int  # px
    thread_shape: str  # v, buttress, reverse_buttress, square
    apex: str  # flat, rounded, pointed
    collar_height: int  # px of smooth collar
    connection: str  # external_hex, internal_hex, morse_taper, other
    tissue_level: bool  # a flared transmucosal neck
    width: int = 110
    length: int = 300


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def _background(rng: random.Random) -> Image.Image:
    base = rng.randint(55, 85)
    img = Image.new("L", (WIDTH, HEIGHT), base)
    draw = ImageDraw.Draw(img)
    # Trabecular bone: overlapping soft blobs of slightly different greys.
    for _ in range(900):
        x, y = rng.randint(0, WIDTH), rng.randint(60, HEIGHT)
        r = rng.randint(2, 9)
        shade = base + rng.randint(-18, 40)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=max(0, min(255, shade)))
    # Soft tissue / crown area above the bone crest is darker.
    draw.rectangle((0, 0, WIDTH, 60), fill=max(0, base - 30))
    return img.filter(ImageFilter.GaussianBlur(2.2))


def _thread_points(x_edge: float, y: float, depth: int, pitch: int, shape: str, side: int) -> list[tuple]:
    """One thread tooth on the left (side=-1) or right (side=+1) edge, as polygon points."""
    out = x_edge + side * depth
    if shape == "square":
        return [(x_edge, y), (out, y), (out, y + pitch * 0.5), (x_edge, y + pitch * 0.5)]
    if shape == "buttress":
        return [(x_edge, y), (out, y + pitch * 0.15), (x_edge, y + pitch * 0.75)]
    if shape == "reverse_buttress":
        return [(x_edge, y), (out, y + pitch * 0.6), (x_edge, y + pitch * 0.75)]
    return [(x_edge, y), (out, y + pitch * 0.4), (x_edge, y + pitch * 0.8)]  # V


# Where the drawing puts the implant in its WIDTH x HEIGHT frame: centred, its platform at TOP (a
# tissue-level neck rises NECK_RISE above it, an external hex HEX_RISE), the apex pointing down.
TOP = 70
NECK_RISE = 45
HEX_RISE = 16


def implant_top(silhouette: Silhouette) -> int:
    """The highest row the drawn implant reaches (its coronal end: neck, hex or platform)."""
    if silhouette.tissue_level:
        return TOP - NECK_RISE
    if silhouette.connection == "external_hex":
        return TOP - HEX_RISE
    return TOP


def implant_layer(silhouette: Silhouette) -> Image.Image:
    """The implant alone (0 where there is no metal), WIDTH x HEIGHT, apex down, softened: what
    ``render`` lays on its bone and what the generated films (``implants.synthetic_films``) place,
    turn and scale on theirs."""
    layer = Image.new("L", (WIDTH, HEIGHT), 0)
    draw = ImageDraw.Draw(layer)
    s = silhouette
    cx, top = WIDTH / 2, TOP
    bottom = top + s.length
    top_half = s.width / 2
    bottom_half = top_half * s.taper

    def half_width(y: float) -> float:
        t = (y - top) / (bottom - top)
        return top_half + (bottom_half - top_half) * t

    if s.tissue_level:  # flared smooth neck above the bone
        draw.polygon(
            [
                (cx - top_half * 0.8, top - NECK_RISE),
                (cx + top_half * 0.8, top - NECK_RISE),
                (cx + top_half * 1.05, top),
                (cx - top_half * 1.05, top),
            ],
            fill=235,
        )
    apex_y = bottom - (0 if s.apex == "flat" else 28)
    body = [(cx - top_half, top), (cx + top_half, top), (cx + half_width(apex_y), apex_y)]
    if s.apex == "pointed":
        body += [(cx, bottom + 12)]
    elif s.apex == "rounded":
        for i in range(1, 10):
            t = i / 10
            body.append((cx + half_width(apex_y) * (1 - t) ** 0.5 * (1 if t < 1 else 0), apex_y + 28 * t))
        body.append((cx, bottom))
        for i in range(9, 0, -1):
            t = i / 10
            body.append((cx - half_width(apex_y) * (1 - t) ** 0.5, apex_y + 28 * t))
    body += [(cx - half_width(apex_y), apex_y)]
    draw.polygon(body, fill=240)

    y = top + s.collar_height
    while y < apex_y - s.thread_pitch * 0.8:
        for side in (-1, 1):
            edge = cx + side * half_width(y)
            draw.polygon(_thread_points(edge, y, s.thread_depth, s.thread_pitch, s.thread_shape, side), fill=228)
        y += s.thread_pitch

    # The connection, seen through the metal as a darker shape at the top.
    conn_w = top_half * 0.55
    if s.connection == "external_hex":
        draw.rectangle((cx - conn_w, top - HEX_RISE, cx + conn_w, top), fill=215)
        draw.rectangle((cx - conn_w * 0.35, top, cx + conn_w * 0.35, top + 90), fill=150)
    elif s.connection == "internal_hex":
        draw.rectangle((cx - conn_w, top, cx + conn_w, top + 40), fill=140)
        draw.rectangle((cx - conn_w * 0.4, top + 40, cx + conn_w * 0.4, top + 110), fill=160)
    elif s.connection == "morse_taper":
        draw.polygon(
            [(cx - conn_w, top), (cx + conn_w, top), (cx + conn_w * 0.35, top + 75), (cx - conn_w * 0.35, top + 75)],
            fill=135,
        )
        draw.rectangle((cx - conn_w * 0.25, top + 75, cx + conn_w * 0.25, top + 130), fill=160)
    else:
        draw.polygon([(cx - conn_w, top), (cx + conn_w, top), (cx, top + 55)], fill=145)
        draw.rectangle((cx - conn_w * 0.3, top + 55, cx + conn_w * 0.3, top + 105), fill=165)

    return layer.filter(ImageFilter.GaussianBlur(1.1))


def render(silhouette: Silhouette, *, seed_name: str) -> Image.Image:
    """Draw the implant, bright on a grey bone background, as a greyscale image."""
    rng = random.Random(_seed(seed_name))
    img = _background(rng)
    layer = implant_layer(silhouette)
    img.paste(layer, mask=layer.point(lambda v: 255 if v > 0 else 0))
    # Film grain from our own seeded RNG (Image.effect_noise cannot be seeded).
    px = img.load()
    for _ in range(WIDTH * HEIGHT // 6):
        x, yy = rng.randrange(WIDTH), rng.randrange(HEIGHT)
        px[x, yy] = max(0, min(255, px[x, yy] + rng.randint(-14, 14)))
    return img.filter(ImageFilter.GaussianBlur(0.6))


def render_png(silhouette: Silhouette, *, seed_name: str) -> bytes:
    buffer = io.BytesIO()
    render(silhouette, seed_name=seed_name).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
