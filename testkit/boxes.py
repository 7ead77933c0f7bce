"""Scoring the fixture finder against a film's truth (``bench.fixtures`` and the finder's tests):
boxes overlap by IoU, each found box matched to at most one true one, and the film decoded as the
worker holds it."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match(found: list, truth: list[dict], *, threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """(found index, truth index, IoU) pairs, best IoU first, each side used once."""
    pairs = sorted(
        ((iou(f.box, t["box"]), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)), reverse=True
    )
    used_f, used_t, out = set(), set(), []
    for value, i, j in pairs:
        if value < threshold or i in used_f or j in used_t:
            continue
        used_f.add(i)
        used_t.add(j)
        out.append((i, j, value))
    return out


def decoded(data: bytes) -> np.ndarray:
    """The film as the worker holds it: greyscale or RGB pixels."""
    image = Image.open(io.BytesIO(data))
    return np.asarray(image.convert("RGB" if image.mode not in ("L", "I;16") else "L"))
