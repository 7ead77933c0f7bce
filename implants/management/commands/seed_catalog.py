"""Load the 32 reference implants of the old system, each with one generated reference image.

Idempotent: an existing manufacturer, implant or catalogue reference image is left as it is, so a
second run changes nothing (and never overwrites a real image that staff uploaded).
"""

from __future__ import annotations

from django.utils.text import slugify
from tqdm import tqdm

from implants import services
from implants.catalog import CATALOG, MANUFACTURERS
from implants.models import ReferenceSource
from implants.synthetic import Silhouette, render_png
from kernel.commands import RaioxCommand


class Command(RaioxCommand):
    help = "Carrega o catálogo de referência (4 fabricantes x 8 implantes) com imagens geradas."

    def handle(self, *args: object, **options: object) -> None:
        total = sum(len(items) for items in CATALOG.values())
        created_implants = created_images = 0
        with tqdm(total=total, desc="catálogo", unit="implante", disable=options["verbosity"] == 0) as bar:
            for data in MANUFACTURERS:
                manufacturer, _ = services.manufacturer_get_or_create(**data)
                for item in CATALOG[manufacturer.name]:
                    implant, created = services.implant_get_or_create(
                        manufacturer=manufacturer, name=item["name"], **item["features"]
                    )
                    created_implants += created
                    has_image = implant.reference_images.filter(source=ReferenceSource.CATALOG).exists()
                    if not has_image:
                        png = render_png(Silhouette(**item["drawing"]), seed_name=str(implant))
                        services.reference_image_create(
                            implant=implant,
                            image_bytes=png,
                            filename=f"{slugify(str(implant))}.png",
                            source=ReferenceSource.CATALOG,
                        )
                        created_images += 1
                    bar.update(1)
        self.stdout.write(
            self.style.SUCCESS(
                f"Catálogo pronto: {created_implants} implantes e {created_images} imagens novos "
                f"({total} implantes no catálogo)."
            )
        )
