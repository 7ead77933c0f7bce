"""Load the 32 reference implants of the old system, each with one generated reference image.

The seed file goes through the catalogue import (``implants.seed``: the code ``import_catalog``
runs), its pictures drawn instead of read. Idempotent: an existing manufacturer or implant is left
as it is, and an implant that has a catalogue picture gets no drawing, so a second run changes
nothing (and never overwrites a real image that staff uploaded).
"""

from __future__ import annotations

from django.core.management.base import CommandError

from implants.bulk import CREATED, UNCHANGED, UPDATED
from implants.seed import seed_catalog
from kernel.commands import RaioxCommand


class Command(RaioxCommand):
    help = "Carrega o catálogo de referência (4 fabricantes x 8 implantes) com imagens geradas."

    def handle(self, *args: object, **options: object) -> None:
        outcomes, problems = seed_catalog()
        if problems:  # our own file: a test keeps it valid
            where, errors = problems[0]
            raise CommandError(f"implants/fixtures/seed_catalogue.csv, {where}: {'; '.join(errors)}")
        for outcome in outcomes:  # resembles one of ours, or refused: the operator looks at it
            if outcome.status not in (CREATED, UPDATED, UNCHANGED) and int(options["verbosity"]) >= 1:
                self.stdout.write(f"  {outcome.line_text()}")
        created_implants = sum(outcome.status == CREATED for outcome in outcomes)
        created_images = sum(outcome.images for outcome in outcomes)
        self.stdout.write(
            self.style.SUCCESS(
                f"Catálogo pronto: {created_implants} implantes e {created_images} imagens novos "
                f"({len(outcomes)} implantes no catálogo)."
            )
        )
