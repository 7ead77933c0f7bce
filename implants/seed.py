"""The seed catalogue (``implants/fixtures/seed_catalogue.csv``) loaded through the catalogue
import (``implants.catalog_io``: the rows parsed, checked, matched to our names and written as
``import_catalog`` does), with pictures drawn instead of read (``SeedPictures``).

Idempotent: an implant already here is left as it is (``update=False``: staff's edits are kept),
and no picture is drawn for an implant that already has a catalogue picture (staff's own upload is
never joined by, let alone replaced with, a drawing); the drawings are deterministic, so a second
run finds every picture already stored and changes nothing.
"""

from __future__ import annotations

from functools import cache

from django.utils.text import slugify

from implants.bulk import DecodedImages, RowOutcome
from implants.catalog import CATALOG, SEED_CATALOGUE
from implants.catalog_io import import_rows, parse_row, read_records, validate_file
from implants.models import ReferenceImage, ReferenceSource
from implants.synthetic import Silhouette, render_png
from kernel.imaging import ValidatedImage

# The description fields legacy's known lines take from the seed (its notes and is_active are the
# import's defaults, not facts about the line).
_NOT_FEATURES = ("notes", "is_active")


class SeedPictures:
    """An image source for the catalogue import (``default_images`` / ``image``, as
    ``catalog_io.FolderSource``): each seed implant's one generated picture
    (``implants.synthetic.render_png`` of its ``seed_drawings.csv`` row), decoded once."""

    def __init__(self) -> None:
        self.drawings = {
            (slugify(maker), slugify(item["name"])): (maker, item["name"], item["drawing"])
            for maker, items in CATALOG.items()
            for item in items
        }
        self.decoded = DecodedImages()

    def default_images(self, manufacturer_slug: str, implant_slug: str) -> list[str]:
        found = self.drawings.get((manufacturer_slug, implant_slug))
        if found is None:
            return []
        maker, name, _drawing = found
        pictures = ReferenceImage.objects.filter(implant__manufacturer__name=maker, implant__name=name)
        if pictures.filter(source=ReferenceSource.CATALOG).exists():
            return []
        return [f"{manufacturer_slug}/{implant_slug}.png"]

    def read(self, path: str) -> bytes:
        manufacturer_slug, _, file_name = path.partition("/")
        found = self.drawings.get((manufacturer_slug, file_name.removesuffix(".png")))
        if found is None:
            raise FileNotFoundError(path)
        maker, name, drawing = found
        return render_png(Silhouette(**drawing), seed_name=f"{maker} {name}")

    def image(self, path: str) -> ValidatedImage:
        return self.decoded.get(path, lambda: self.read(path))


def seed_catalog() -> tuple[list[RowOutcome], list[tuple[str, list[str]]]]:
    """Load the seed catalogue: (each row's outcome, the rows the import refused with why)."""
    source = SeedPictures()
    rows, problems = validate_file(SEED_CATALOGUE, source)
    return list(import_rows(rows, source, update=False)), problems


@cache
def seed_features() -> dict[tuple[str, str], dict]:
    """(manufacturer, name) -> the seed line's description fields as the import reads them (notes
    and is_active left out)."""
    features: dict[tuple[str, str], dict] = {}
    for where, record in read_records(SEED_CATALOGUE):
        row, _errors = parse_row(where, record, None)
        features[(row.manufacturer["name"], row.name)] = {
            key: value for key, value in row.features.items() if key not in _NOT_FEATURES
        }
    return features
