"""Radiograph-like X-rays of 0.5-2 MB, generated (the repository holds no real radiographs).

Each picture has what makes a real periapical/panoramic file heavy: a large greyscale frame, soft
bone texture, a bright threaded implant, and sensor grain (which is what defeats PNG/JPEG
compression). Sizes span 0.6-1.9 MB, PNG and JPEG, like the files dentists upload.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from implants.catalog import CATALOG
from implants.synthetic import Silhouette, implant_layer

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
    # One implant of the seed catalogue, drawn the catalogue's way (what the worker's finder reads),
    # scaled to the film: each upload is one answer (a film of several becomes one region per
    # fixture: bench.fixtures measures the finder on those).
    items = [item for group in CATALOG.values() for item in group]
    layer = implant_layer(Silhouette(**items[seed % len(items)]["drawing"]))
    scale = 0.45 * height / layer.height * 1.3
    layer = layer.resize((round(layer.width * scale), round(layer.height * scale)), Image.BICUBIC)
    cx = int(rng.integers(width // 5, 4 * width // 5))
    at = (max(0, min(width - layer.width, cx - layer.width // 2)), max(0, (height - layer.height) // 2))
    picture.paste(layer, at, mask=layer.point(lambda v: 255 if v > 0 else 0))
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
