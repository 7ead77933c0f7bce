"""Radiograph-like X-rays of 0.5-2 MB, generated (the repository holds no real radiographs).

Each picture has what makes a real periapical/panoramic file heavy: a large greyscale frame, soft
bone texture, a bright threaded implant, and sensor grain (which is what defeats PNG/JPEG
compression). Sizes span 0.6-1.9 MB, PNG and JPEG, like the files dentists upload.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# (width, height, format): ~0.6, 1.0, 1.5, 1.3 and 1.8 MB.
SHAPES = [(1200, 800, "PNG"), (1600, 1000, "PNG"), (1900, 1250, "PNG"), (2400, 1300, "JPEG"), (3000, 1500, "JPEG")]


def radiograph(seed: int, width: int, height: int, fmt: str) -> bytes:
    rng = np.random.default_rng(seed)
    # Bone: low-frequency blobs, darker towards the top and bottom edges.
    small = rng.normal(0, 1, size=(height // 24 + 1, width // 24 + 1)).astype(np.float32)
    small = (small - small.min()) / (np.ptp(small) + 1e-6) * 120 + 40
    base = np.asarray(Image.fromarray(small.astype(np.uint8)).resize((width, height), Image.BICUBIC), np.float32)
    rows = np.linspace(-1, 1, height)[:, None]
    picture = Image.fromarray(np.clip(base * (1 - 0.35 * rows**2), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    # One implant, a bright body with thread teeth on both sides: each upload is one answer (a film
    # of several becomes one region per fixture: bench.fixtures measures the finder on those).
    for _ in range(1):
        cx = int(rng.integers(width // 5, 4 * width // 5))
        top, length, body = int(height * 0.25), int(height * 0.45), int(width * 0.05)
        draw.rectangle((cx - body // 2, top, cx + body // 2, top + length), fill=235)
        pitch = max(6, height // 90)
        for y in range(top, top + length, pitch):
            for edge, side in ((cx - body // 2, -1), (cx + body // 2, 1)):
                draw.polygon([(edge, y), (edge + side * body // 6, y + pitch // 2), (edge, y + pitch)], fill=230)
    picture = picture.filter(ImageFilter.GaussianBlur(1.2))
    grain = np.asarray(picture, np.float32) + rng.normal(0, 6.0, size=(height, width))
    picture = Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    if fmt == "PNG":
        picture.save(out, "PNG", compress_level=6)
    else:
        picture.save(out, "JPEG", quality=95)
    return out.getvalue()


def write_pool(folder: Path, count: int) -> list[Path]:
    """``count`` distinct X-rays in ``folder`` (cycling through the sizes); reused when present."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        width, height, fmt = SHAPES[i % len(SHAPES)]
        path = folder / f"radiografia-{i:03d}.{'png' if fmt == 'PNG' else 'jpg'}"
        if not path.exists():
            path.write_bytes(radiograph(1000 + i, width, height, fmt))
        paths.append(path)
    return paths
