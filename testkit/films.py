"""Generated radiographs where the fixture finder's answer is obvious: a dark film with soft
noise and bright, threaded, elongated screws where the test puts them (nothing else bright)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class Screw:
    cx: int
    cy: int
    length: int
    breadth: int
    apex: str = "down"  # the narrow, rounded end

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (
            self.cx - self.breadth // 2,
            self.cy - self.length // 2,
            self.cx + self.breadth // 2,
            self.cy + self.length // 2,
        )


def film(size: tuple[int, int], screws: list[Screw] = (), *, seed: int = 0, blur: float = 0.0) -> Image.Image:
    """A greyscale film of ``size`` with ``screws`` drawn on it (threads as notches along both
    sides, a tapered apex)."""
    width, height = size
    rng = np.random.default_rng(seed)
    base = rng.normal(60, 6, size=(height, width)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(base, mode="L").filter(ImageFilter.GaussianBlur(1.5))
    draw = ImageDraw.Draw(img)
    for s in screws:
        x0, y0, x1, y1 = s.box
        taper = max(2, s.breadth // 4)
        top, bottom = (y0, y1) if s.apex == "down" else (y1, y0)
        sign = 1 if s.apex == "down" else -1
        # Body with a tapered apex end.
        draw.polygon(
            [
                (x0, top),
                (x1, top),
                (x1, bottom - sign * taper * 2),
                (x1 - taper, bottom),
                (x0 + taper, bottom),
                (x0, bottom - sign * taper * 2),
            ],
            fill=225,
        )
        # Threads: dark notches along both sides.
        pitch = max(4, s.length // 12)
        for y in range(min(y0, y1) + pitch, max(y0, y1) - pitch, pitch):
            draw.polygon([(x0 - 1, y), (x0 + taper, y + pitch // 2), (x0 - 1, y + pitch)], fill=90)
            draw.polygon([(x1 + 1, y), (x1 - taper, y + pitch // 2), (x1 + 1, y + pitch)], fill=90)
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    return img


# A panoramic-like film with three implants: lower right of the film (patient's lower left, FDI 3),
# upper left of the film (quadrant 1) and lower left of the film (quadrant 4).
PANORAMIC_SIZE = (1200, 500)
PANORAMIC_SCREWS = [
    Screw(200, 140, 150, 46, apex="up"),
    Screw(430, 360, 150, 46),
    Screw(950, 360, 150, 46),
]
