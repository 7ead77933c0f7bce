"""The worker's decode of one X-ray (``kernel.imaging.decode_image``), before and after issue 15's
change, side by side: ``python -m bench.imaging [--repeat N]``.

"before" is the decode as it was: intake's header check again (JPEG 1/8-scale probe included),
the full decode, a fresh image of the pixels, saved as PNG with Pillow's defaults (zlib level 6,
Z_FILTERED). "after" is ``decode_image`` as it is now. Both run on the same bytes, alternately,
``--repeat`` times each; the table gives the median. "re-read" is Pillow decoding the stored PNG,
what the embedder and the result page pay for it afterwards.

The images are generated (the repository holds no real radiographs) with what makes real ones
heavy, sensor grain over soft bone and bright implants (``testkit.radiographs``): the five
``bench.intake`` sends in its drain (Pillow-written: its PNGs hold pixels only, so they are kept
as sent), then 2000 × 1000 frames as X-ray systems and dentists write them: 8-bit greyscale PNG
bare and with the chunks imaging software adds (re-encoded), 16-bit PNG, greyscale JPEG, 12-bit
DICOM, a colour JPEG (a photo of a screen), and the PNG ``decode_image`` writes, sent again.

Every run also checks that both give the same pixels and the same content hash: the hash used to
reuse embeddings must not notice the change.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps
from PIL.PngImagePlugin import PngInfo

from bench.common import setup_django, table
from testkit.images import encode
from testkit.radiographs import SHAPES, radiograph


def _grey(seed: int, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(radiograph(seed, width, height, "PNG"))))


def _sixteen_bit(grey: np.ndarray, seed: int) -> np.ndarray:
    """12 significant bits in 16, as detectors write them: the low bits are grain, not zeros."""
    rng = np.random.default_rng(seed)
    return grey.astype(np.uint16) * 16 + rng.integers(0, 16, size=grey.shape, dtype=np.uint16)


def _dicom(pixels: np.ndarray) -> bytes:
    from testkit.dicom import twelve_bit_dicom

    return twelve_bit_dicom(pixels, Modality="IO", PatientName="Paciente^Ficticio")


def _colour_photo(grey: np.ndarray, seed: int) -> Image.Image:
    """A phone photo of the X-ray on a screen: a warm cast and grain that differs per channel."""
    rng = np.random.default_rng(seed)
    channels = [grey * gain + rng.normal(0, 3, size=grey.shape) for gain in (1.0, 0.96, 0.9)]
    return Image.fromarray(np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8))


def images() -> list[tuple[str, bytes]]:
    from kernel.imaging import decode_image

    found = []
    for i, (width, height, fmt) in enumerate(SHAPES):
        found.append((f"intake {width}×{height} {fmt}", radiograph(1000 + i, width, height, fmt)))
    grey = _grey(7, 2000, 1000)
    png8 = encode(Image.fromarray(grey), "PNG")
    software = PngInfo()
    software.add_text("Software", "Sensor X 4.2")
    found += [
        ("2000×1000 PNG 8-bit", png8),
        ("2000×1000 PNG 8-bit + pHYs, tEXt", encode(Image.fromarray(grey), "PNG", dpi=(600, 600), pnginfo=software)),
        ("2000×1000 PNG 16-bit", encode(Image.fromarray(_sixteen_bit(grey, 7)), "PNG")),
        ("2000×1000 JPEG grey q95", encode(Image.fromarray(grey), "JPEG", quality=95)),
        ("2000×1000 DICOM 12-bit", _dicom(_sixteen_bit(grey, 7))),
        ("2000×1000 JPEG colour photo", encode(_colour_photo(grey, 7), "JPEG", quality=92)),
        ("2000×1000 PNG pixels only", decode_image(png8).content),
    ]
    return found


def decode_before(data: bytes) -> tuple[bytes, str]:
    """``decode_image`` as it was before issue 15 (same helpers, old order and PNG settings)."""
    from kernel import imaging

    header = imaging.inspect_image(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if header.source_format == "DICOM":
            img = imaging._decode_dicom(data, "file")
        else:
            img = imaging._open_pillow(data, "file")
            img.load()
            img = ImageOps.exif_transpose(img)
        img = imaging._normalise_mode(img)
        raw = img.tobytes()
        clean = Image.frombytes(img.mode, img.size, raw)
        out = io.BytesIO()
        clean.save(out, format="PNG")
    digest = hashlib.sha256(f"{clean.mode}:{clean.width}x{clean.height}:".encode() + raw).hexdigest()
    return out.getvalue(), digest


def decode_after(data: bytes) -> tuple[bytes, str]:
    from kernel.imaging import decode_image

    result = decode_image(data)
    return result.content, result.content_hash


def _ms(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000


def _reread(png: bytes) -> None:
    Image.open(io.BytesIO(png)).load()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each decode per image (median shown)")
    args = parser.parse_args(argv)
    setup_django()

    load_before = os.getloadavg()
    rows = []
    drain_before: list[float] = []
    drain_after: list[float] = []
    for label, data in images():
        old_png, old_hash = decode_before(data)  # warm-up, and the outputs compared below
        new_png, new_hash = decode_after(data)
        same_pixels = Image.open(io.BytesIO(old_png)).tobytes() == Image.open(io.BytesIO(new_png)).tobytes()
        if old_hash != new_hash or not same_pixels:
            raise SystemExit(f"{label}: the new decode changed the pixels or their hash")
        before, after, reread_before, reread_after = [], [], [], []
        for _ in range(args.repeat):
            before.append(_ms(lambda data=data: decode_before(data)))
            after.append(_ms(lambda data=data: decode_after(data)))
            reread_before.append(_ms(lambda png=old_png: _reread(png)))
            reread_after.append(_ms(lambda png=new_png: _reread(png)))
        b, a = statistics.median(before), statistics.median(after)
        if label.startswith("intake "):
            drain_before.append(b)
            drain_after.append(a)
        rows.append(
            [
                label,
                f"{len(data) / 1e6:.2f}",
                f"{b:.0f}",
                f"{a:.0f}",
                f"{b / a:.1f}×",
                f"{len(old_png) / 1e6:.2f}",
                f"{len(new_png) / 1e6:.2f}",
                f"{statistics.median(reread_before):.0f} / {statistics.median(reread_after):.0f}",
                "same" if new_png != data else "same (kept as sent)",
            ]
        )
    load_after = os.getloadavg()
    table(
        f"decode + normalise, one image, median of {args.repeat} (ms; sizes in MB)",
        [
            "image",
            "sent",
            "before ms",
            "after ms",
            "speed-up",
            "stored before",
            "stored after",
            "re-read ms before / after",
            "pixels + hash",
        ],
        rows,
    )
    mean_b, mean_a = statistics.fmean(drain_before), statistics.fmean(drain_after)
    print(
        f"\nbench.intake's five X-rays, mean per image: {mean_b:.0f} ms before, {mean_a:.0f} ms after "
        f"({1000 / mean_b:.1f} → {1000 / mean_a:.1f} images/s on one core for this step alone)"
    )
    print(
        f"load average (1/5/15 min): {' '.join(f'{x:.2f}' for x in load_before)} at start, "
        f"{' '.join(f'{x:.2f}' for x in load_after)} at end, on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
