"""The old system's 32 reference implants: 4 manufacturers x 8 of their real product lines.

The data lives in ``implants/fixtures``: ``seed_catalogue.csv`` in the ``import_catalog`` format
(``implants.catalog_io.COLUMNS``: what a dentist reads on an X-ray, diameters and lengths as
commonly sold), and ``seed_drawings.csv`` with what only the generated seed pictures need (how the
silhouette of ``implants.synthetic`` is drawn; its shape fields come from the catalogue row).

This module is the benches' read of those files (plain ``csv``, no Django: the benches and the
synthetic films read ``CATALOG`` without a configured project): the names, the manufacturers and
how each implant is drawn, nothing more. The implant's description (diameters, lengths, yes/no
cells) is read by the catalogue import only: ``seed_catalog`` loads the file through it
(``implants.seed``).
"""

from __future__ import annotations

import csv
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SEED_CATALOGUE = FIXTURES / "seed_catalogue.csv"
SEED_DRAWINGS = FIXTURES / "seed_drawings.csv"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _load() -> tuple[list[dict], dict[str, list[dict]]]:
    """(manufacturers as ``manufacturer_get_or_create`` takes them, {manufacturer: [{"name",
    "drawing"}]}) in the file's order. The drawing's shape fields are the row's text cells as
    written (choice values, no parsing); its sizes are the drawings file's own."""
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
        drawing = drawings[(maker, row["name"])]
        catalog[maker].append(
            {
                "name": row["name"],
                # Drawing parameters for the synthetic radiograph.
                "drawing": {
                    "taper": float(drawing["taper"]),
                    "thread_pitch": int(drawing["thread_pitch"]),
                    "thread_depth": int(drawing["thread_depth"]),
                    "thread_shape": row["thread_shape"],
                    "apex": row["apex"],
                    "collar_height": int(drawing["collar_height"]),
                    "connection": row["connection"],
                    "tissue_level": row["level"] == "tissue",
                },
            }
        )
    return manufacturers, catalog


MANUFACTURERS, CATALOG = _load()
