"""The one place pictures are built and encoded (films with several screws: ``testkit.films``).

- ``xray``/``xray_png``/``xray_file``: the tests' X-ray, one implant drawn the catalogue's way on a
  bone background, different for every seed — so the worker's real fixture finder finds exactly one
  fixture in it, as it would in a dentist's periapical, and every test runs the whole path (finder,
  canonical view, model, search).
- ``plain_image``: one flat grey (or colour) picture in any format, for the cases where what is in
  the picture does not matter (validation, storage, limits).
- ``encode``: a picture's file; ``png_chunk``: one checksummed PNG chunk, for hand-made PNGs.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

from implants.synthetic import Silhouette, render

THREADS = ("v", "buttress", "reverse_buttress", "square")
CONNECTIONS = ("external_hex", "internal_hex", "morse_taper", "other")


def silhouette(seed: int) -> Silhouette:
    rng = random.Random(f"test x-ray {seed}")
    return Silhouette(
        taper=rng.choice((1.0, rng.uniform(0.6, 0.85))),
        thread_pitch=rng.randint(12, 24),
        thread_depth=rng.randint(5, 11),
        thread_shape=rng.choice(THREADS),
        apex=rng.choice(("flat", "rounded", "pointed")),
        collar_height=rng.randint(8, 36),
        connection=rng.choice(CONNECTIONS),
        tissue_level=rng.random() < 0.2,
        width=rng.randint(95, 120),
        length=rng.randint(260, 310),
    )


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def plain_image(
    size: tuple[int, int] = (200, 200),
    value: int | tuple[int, ...] = 100,
    *,
    mode: str = "L",
    fmt: str = "PNG",
    **options,
) -> bytes:
    """A flat picture of ``size`` filled with ``value``, as a ``fmt`` file (``options``: the encoder's)."""
    return encode(Image.new(mode, size, value), fmt, **options)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def xray(seed: int = 0, size: tuple[int, int] | None = None, brightness: int = 0) -> Image.Image:
    """The drawing (320 × 480); with ``size``, scaled to fit inside it (its proportions kept, as a
    sensor would) on the drawing's own background; ``brightness`` shifts every pixel, for a
    near-duplicate of the same picture."""
    img = render(silhouette(seed), seed_name=f"test x-ray {seed}")
    if size is not None and size != img.size:
        scale = min(size[0] / img.width, size[1] / img.height)
        drawn = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
        canvas = Image.new("L", size, int(np.median(np.asarray(img)[-40:])))
        canvas.paste(drawn, ((size[0] - drawn.width) // 2, (size[1] - drawn.height) // 2))
        img = canvas
    if brightness:
        pixels = np.clip(np.asarray(img, dtype=np.int16) + brightness, 0, 255).astype(np.uint8)
        img = Image.fromarray(pixels, mode="L")
    return img


def xray_png(seed: int = 0, size: tuple[int, int] | None = None, brightness: int = 0) -> bytes:
    """``xray`` as a PNG file (the drawing's own 320 × 480 unless ``size``)."""
    return encode(xray(seed, size, brightness))


def xray_file(size: tuple[int, int] = (256, 192), fmt: str = "PNG", mode: str = "L", seed: int = 0) -> bytes:
    """A small upload: ``xray`` fitted into ``size`` (the worker's finder still finds the implant),
    in ``fmt`` and ``mode``."""
    img = xray(seed, size)
    if mode != "L":
        img = img.convert(mode)
    return encode(img, fmt)


def bright_post_png() -> bytes:
    """320 × 320, dark, with one bright threaded post: implant-like enough for the pages, drawn
    without the catalogue (the ops tests never run the finder on it)."""
    img = Image.new("L", (320, 320), 20)
    draw = ImageDraw.Draw(img)
    draw.rectangle((140, 40, 180, 280), fill=220)  # an implant-like bright post
    for y in range(60, 270, 18):
        draw.line((130, y, 190, y + 6), fill=250, width=3)
    return encode(img)
