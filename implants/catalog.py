"""The old system's 32 reference implants: 4 manufacturers x 8 of their real product lines.

The data lives in ``implants/fixtures``: ``seed_catalogue.csv`` in the ``import_catalog`` format
(``implants.catalog_io.COLUMNS``: what a dentist reads on an X-ray, diameters and lengths as
commonly sold), and ``seed_drawings.csv`` with what only the generated seed pictures need (how the
silhouette of ``implants.synthetic`` is drawn; its shape fields come from the catalogue row).

Plain ``csv`` here, no Django: the bench reads ``CATALOG`` without a configured project.
"""

from __future__ import annotations

import csv
from pathlib import Path

from implants.description import IMPLANT_DESCRIPTION_FIELDS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED_CATALOGUE = FIXTURES / "seed_catalogue.csv"
SEED_DRAWINGS = FIXTURES / "seed_drawings.csv"

# The catalogue row's fields that seed_catalog gives the implant (the row's notes, is_active and
# images are the import's defaults: empty, active, the generated picture).
SEED_FEATURES = [field for field in IMPLANT_DESCRIPTION_FIELDS if field not in ("notes", "is_active")]


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _numbers(cell: str) -> list[int | float]:
    return [_number(part) for part in cell.split(";") if part]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _load() -> tuple[list[dict], dict[str, list[dict]]]:
    drawings = {(row["manufacturer"], row["name"]): row for row in _rows(SEED_DRAWINGS)}
    manufacturers: list[dict] = []
    catalog: dict[str, list[dict]] = {}
    for row in _rows(SEED_CATALOGUE):
        maker = row["manufacturer"]
        if maker not in catalog:
            manufacturers.append(
                {"name": maker, "country": row["manufacturer_country"], "website": row["manufacturer_website"]}
            )
            catalog[maker] = []
        features: dict = {key: row[key] for key in SEED_FEATURES}
        features["platform_switching"] = row["platform_switching"] == "sim"
        features["diameters_mm"] = _numbers(row["diameters_mm"])
        features["lengths_mm"] = _numbers(row["lengths_mm"])
        drawing = drawings[(maker, row["name"])]
        catalog[maker].append(
            {
                "name": row["name"],
                "features": features,
                # Drawing parameters for the synthetic radiograph.
                "drawing": {
                    "taper": float(drawing["taper"]),
                    "thread_pitch": int(drawing["thread_pitch"]),
                    "thread_depth": int(drawing["thread_depth"]),
                    "thread_shape": features["thread_shape"],
                    "apex": features["apex"],
                    "collar_height": int(drawing["collar_height"]),
                    "connection": features["connection"],
                    "tissue_level": features["level"] == "tissue",
                },
            }
        )
    return manufacturers, catalog


MANUFACTURERS, CATALOG = _load()
