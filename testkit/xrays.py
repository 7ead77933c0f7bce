"""The tests' X-ray: one implant drawn the catalogue's way on a bone background, different for every
seed — so the worker's real fixture finder finds exactly one fixture in it, as it would in a
dentist's periapical, and every test runs the whole path (finder, canonical view, model, search)."""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image

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


def xray_image(seed: int = 0, size: tuple[int, int] | None = None, brightness: int = 0) -> Image.Image:
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
    out = io.BytesIO()
    xray_image(seed, size, brightness).save(out, format="PNG")
    return out.getvalue()
