"""Generate a catalogue of drawn implants (import_catalog format) and held-out distorted copies.

manage.py generate_catalog out/ --implants 200 --images 5 --heldout 2
manage.py generate_catalog out/ --seed-catalog-heldout 5   # copies of the 32 seed implants only
manage.py generate_catalog out/ --films 64 --seed 1       # radiographs of the seed implants + truth.json
"""

from __future__ import annotations

import time
from pathlib import Path

from implants.synthetic_catalog import write_catalog, write_heldout_for_catalog
from implants.synthetic_films import CONDITIONS, write_films
from kernel.commands import RaioxCommand


class Command(RaioxCommand):
    help = "Gera um catálogo sintético (CSV + imagens) e cópias distorcidas para avaliação."

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path)
        parser.add_argument("--implants", type=int, default=200)
        parser.add_argument("--images", type=int, default=5, help="reference images per implant")
        parser.add_argument("--heldout", type=int, default=0, help="distorted held-out copies per implant")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--heldout-dir", type=Path, help="where to write the held-out copies (default out/heldout)")
        parser.add_argument("--heldout-only", action="store_true", help="write only the held-out copies")
        parser.add_argument(
            "--seed-catalog-heldout",
            type=int,
            default=0,
            metavar="N",
            help="only write N distorted copies of each implant of seed_catalog (no CSV)",
        )

        parser.add_argument(
            "--films",
            type=int,
            default=0,
            metavar="N",
            help=f"only write N generated radiographs per condition ({', '.join(CONDITIONS)}) of the seed "
            "implants, with truth.json (implants.synthetic_films)",
        )

    def handle(self, *args: object, **options: object) -> None:
        started = time.perf_counter()
        out: Path = options["out"]
        if options["films"]:
            n = write_films(out, films=int(options["films"]), seed=int(options["seed"]))
            elapsed = time.perf_counter() - started
            self.stdout.write(f"{n} radiografias em {out}, verdade em {out / 'truth.json'} ({elapsed:.1f} s)")
            return
        if options["seed_catalog_heldout"]:
            n = write_heldout_for_catalog(out, copies=int(options["seed_catalog_heldout"]), seed=int(options["seed"]))
            self.stdout.write(f"{n} cópias distorcidas em {out} ({time.perf_counter() - started:.1f} s)")
            return
        csv_path, images, copies = write_catalog(
            out,
            implants=int(options["implants"]),
            images=int(options["images"]),
            heldout=int(options["heldout"]),
            seed=int(options["seed"]),
            heldout_dir=options["heldout_dir"],
            heldout_only=bool(options["heldout_only"]),
        )
        self.stdout.write(
            f"{csv_path}: {options['implants']} implantes, {images} imagens, {copies} cópias distorcidas "
            f"({time.perf_counter() - started:.1f} s)"
        )
