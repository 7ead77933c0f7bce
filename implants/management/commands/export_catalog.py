"""Write the catalogue in the format import_catalog reads (CSV or JSON by extension).

manage.py export_catalog catalogo.csv --images-dir fotos/
"""

from __future__ import annotations

from pathlib import Path

from implants.catalog_io import export_catalog
from kernel.commands import RaioxCommand


class Command(RaioxCommand):
    help = "Exporta o catálogo (CSV ou JSON) e, com --images-dir, as imagens de referência."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="output file (.csv or .json)")
        parser.add_argument("--images-dir", type=Path, help="also copy the reference images here")

    def handle(self, *args: object, **options: object) -> None:
        count = export_catalog(options["file"], options["images_dir"])
        self.stdout.write(self.style.SUCCESS(f"{count} implantes exportados para {options['file']}."))
