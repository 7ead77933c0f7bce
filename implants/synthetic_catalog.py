"""A generated catalogue of any size, in the import_catalog format, and held-out distorted copies.

For exercising the bulk import and measuring the matching without real radiographs: each generated
implant line has its own silhouette (implants.synthetic); its reference images differ by background
and grain, and the held-out copies (never imported) are further rotated, blurred, re-contrasted,
cropped or JPEG-compressed, as real X-rays of the same implant would differ from the catalogue's.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from django.utils.text import slugify
from PIL import Image, ImageEnhance, ImageFilter

from implants.catalog_io import COLUMNS
from implants.models import Apex, BodyShape, Collar, Connection, Level, ThreadShape
from implants.synthetic import HEIGHT, WIDTH, Silhouette, render

DISTORTIONS = ("rotation", "blur", "contrast", "crop", "jpeg")
CONNECTIONS = tuple(Connection.values)
THREADS = tuple(ThreadShape.values)
APICES = tuple(Apex.values)


def distort(image: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    """One of the held-out distortions, with a strength drawn from ``rng``."""
    if kind == "rotation":
        angle = rng.choice((-1, 1)) * rng.uniform(5, 15)
        return image.rotate(angle, resample=Image.BICUBIC, fillcolor=int(image.getpixel((0, 0))))
    if kind == "blur":
        return image.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 3.0)))
    if kind == "contrast":
        return ImageEnhance.Contrast(image).enhance(rng.choice((rng.uniform(0.5, 0.75), rng.uniform(1.3, 1.6))))
    if kind == "crop":
        keep = rng.uniform(0.78, 0.9)
        w, h = int(WIDTH * keep), int(HEIGHT * keep)
        x, y = rng.randint(0, WIDTH - w), rng.randint(0, HEIGHT - h)
        return image.crop((x, y, x + w, y + h)).resize((WIDTH, HEIGHT), Image.BICUBIC)
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=rng.randint(15, 35))
        return Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    raise ValueError(f"unknown distortion {kind!r}")


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def generated_implants(count: int, *, seed: int = 0, manufacturers: int = 10) -> list[dict]:
    """``count`` implant lines with features consistent with their drawn silhouette."""
    rng = random.Random(seed)
    out = []
    for n in range(count):
        body = rng.choice(BodyShape.values)
        thread = rng.choice(THREADS)
        apex = rng.choice(APICES)
        connection = rng.choice(CONNECTIONS)
        tissue = rng.random() < 0.2
        silhouette = Silhouette(
            taper=rng.uniform(0.55, 0.85) if body == BodyShape.TAPERED else 1.0,
            thread_pitch=rng.randint(10, 26),
            thread_depth=rng.randint(4, 12),
            thread_shape=thread,
            apex=apex,
            collar_height=rng.randint(6, 40),
            connection=connection,
            tissue_level=tissue,
            width=rng.randint(90, 125),
            length=rng.randint(250, 320),
        )
        out.append(
            {
                "manufacturer": f"Fabricante {chr(ord('A') + n % manufacturers)}",
                "name": f"Linha {n + 1:03d}",
                "connection": connection,
                "body_shape": body,
                "level": Level.TISSUE.value if tissue else Level.BONE.value,
                "thread_shape": thread,
                "apex": apex,
                "collar": rng.choice(Collar.values),
                "platform_switching": rng.random() < 0.4,
                "diameters_mm": sorted(rng.sample([3.3, 3.5, 3.75, 4.0, 4.3, 5.0, 6.0], 3)),
                "lengths_mm": [8, 10, 11.5, 13],
                "screwdriver": f"Chave hexagonal {rng.choice(['0,9', '1,2', '1,25'])} mm",
                "silhouette": silhouette,
            }
        )
    return out


def _write_heldout(target: Path, item: dict, label: str, n: int, copies: int, seed: int) -> int:
    """``copies`` distorted renders of one implant; the kinds rotate across implants, so that every
    distortion is equally represented whatever the number of copies per implant."""
    if not copies:
        return 0
    target.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{seed} {label} heldout")
    for k in range(copies):
        kind = DISTORTIONS[(n * copies + k) % len(DISTORTIONS)]
        base = render(item["silhouette"], seed_name=f"{label} heldout {k}")
        (target / f"{k + 1}-{kind}.png").write_bytes(_png(distort(base, kind, rng)))
    return copies


def write_catalog(
    out_dir: Path,
    *,
    implants: int,
    images: int,
    heldout: int = 0,
    seed: int = 0,
    heldout_dir: Path | None = None,
    heldout_only: bool = False,
) -> tuple[Path, int, int]:
    """Write ``catalogo.csv`` and ``imagens/<manufacturer>/<implant>/<n>.png`` under ``out_dir``;
    with ``heldout``, also that many distorted copies per implant under ``heldout_dir`` (default
    ``out_dir/heldout``), in the evaluate_matching folder layout; ``heldout_only`` writes only
    those (same implants: the generation is deterministic). Returns (csv, images, copies)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    image_root = out_dir / "imagens"
    heldout_root = heldout_dir or out_dir / "heldout"
    written = copies = 0
    rows = []
    for n, item in enumerate(generated_implants(implants, seed=seed)):
        mslug, islug = slugify(item["manufacturer"]), slugify(item["name"])
        folder = image_root / mslug / islug
        folder.mkdir(parents=True, exist_ok=True)
        label = f"{item['manufacturer']} {item['name']}"
        for k in range(images if not heldout_only else 0):
            (folder / f"{k + 1}.png").write_bytes(_png(render(item["silhouette"], seed_name=f"{label} ref {k}")))
            written += 1
        copies += _write_heldout(heldout_root / mslug / islug, item, label, n, heldout, seed)
        row = {key: item.get(key, "") for key in COLUMNS}
        row.update(
            {
                "platform_switching": "sim" if item["platform_switching"] else "não",
                "is_active": "sim",
                "diameters_mm": ";".join(str(v) for v in item["diameters_mm"]),
                "lengths_mm": ";".join(str(v) for v in item["lengths_mm"]),
                "images": "",  # the folder layout names them
            }
        )
        rows.append(row)
    csv_path = out_dir / "catalogo.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return csv_path, written, copies


def write_heldout_for_catalog(out_dir: Path, *, copies: int, seed: int = 0) -> int:
    """Distorted copies of the seed catalogue's 32 implants (implants.catalog), for evaluation."""
    from implants.catalog import CATALOG

    written = 0
    for manufacturer, items in CATALOG.items():
        for item in items:
            label = f"{manufacturer} {item['name']}"
            target = out_dir / slugify(manufacturer) / slugify(item["name"])
            target.mkdir(parents=True, exist_ok=True)
            rng = random.Random(f"{seed} {label} heldout")
            for k in range(copies):
                kind = DISTORTIONS[(written + k) % len(DISTORTIONS)]
                base = render(Silhouette(**item["drawing"]), seed_name=f"{label} heldout {seed} {k}")
                (target / f"{k + 1}-{kind}.png").write_bytes(_png(distort(base, kind, rng)))
                written += 1
    return written
