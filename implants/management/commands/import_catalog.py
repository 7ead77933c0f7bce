"""Import a catalogue file (CSV or JSON) with its reference images. See implants.catalog_io.

    manage.py import_catalog catalogo.csv --images-dir fotos/
    manage.py import_catalog catalogo.json --bucket catalogos --prefix 2026/ --endpoint-url https://...

Every row is validated first; on any error nothing is written (unless --skip-invalid). Names are
matched to ours as import_legacy matches them (implants.names; --alias "Old=New", repeatable); a
row that only resembles some of ours is "conferir" and not written. Re-running the same file
changes nothing; --dry-run reports what the import would do. Embeddings are queued in batches
for the worker.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError
from tqdm import tqdm

from implants.bulk import CONFERIR, SKIPPED, ImportReport, RowOutcome, bucket_problem
from implants.catalog_io import BucketSource, FolderSource, import_rows, read_records, validate_file
from implants.names import ALIAS_HELP, AliasError, CatalogueNames, parse_aliases
from kernel.commands import RaioxCommand


class Command(RaioxCommand):
    help = "Importa um catálogo (CSV ou JSON) de fabricantes, implantes e imagens de referência."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="catalogue file (.csv or .json)")
        images = parser.add_mutually_exclusive_group()
        images.add_argument("--images-dir", type=Path, help="folder of images (<manufacturer>/<implant>/*.png)")
        images.add_argument("--bucket", help="bucket holding the images (S3 API, AWS_* variables)")
        parser.add_argument("--prefix", default="", help="prefix of the images in --bucket")
        parser.add_argument("--endpoint-url", help="S3 endpoint of --bucket")
        parser.add_argument("--skip-invalid", action="store_true", help="import the valid rows, report the others")
        parser.add_argument(
            "--dry-run", action="store_true", help="validate and report what would be done; write nothing"
        )
        parser.add_argument("--alias", action="append", default=[], help=ALIAS_HELP)
        parser.add_argument("--batch-size", type=int, default=32, help="reference images per embedding task")

    def handle(self, *args: object, **options: object) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"Arquivo não encontrado: {path} (confira o caminho do arquivo CSV ou JSON).")
        try:
            names = CatalogueNames(parse_aliases(options["alias"]))
        except AliasError as exc:
            raise CommandError(str(exc)) from exc
        source = None
        if options["images_dir"]:
            if not options["images_dir"].is_dir():
                raise CommandError(f"Pasta de imagens não encontrada: {options['images_dir']}")
            source = FolderSource(options["images_dir"])
        elif options["bucket"]:
            source = BucketSource(options["bucket"], str(options["prefix"]), options["endpoint_url"])
            try:
                source.check()
            except Exception as exc:  # botocore: no credentials, no such bucket, endpoint unreachable
                raise CommandError(bucket_problem(options["bucket"], exc)) from exc
        try:
            total = len(read_records(path))
        except (ValueError, OSError) as exc:
            raise CommandError(
                f"Não foi possível ler {path}: {exc} (um CSV com cabeçalho ou uma lista JSON, em UTF-8)."
            ) from exc
        with tqdm(total=total, desc="validação", unit="linha", file=self.stderr) as bar:
            rows, problems = validate_file(path, source, progress=bar.update, names=names)
        for where, errors in problems:
            for error in errors:
                self.stderr.write(f"{path.name}, {where}: {error}")
        if problems and not options["skip_invalid"]:
            raise CommandError(
                f"{len(problems)} linha(s) com erro ({', '.join(w for w, _ in problems)}): nada foi importado. "
                "Corrija o arquivo ou use --skip-invalid."
            )
        dry_run = bool(options["dry_run"])
        if dry_run:
            self.stdout.write(f"Simulação (--dry-run): {len(rows)} linhas válidas, {len(problems)} com erro.")
        report = ImportReport()
        for where, errors in problems:
            report.add(RowOutcome(where, "", SKIPPED, "; ".join(errors)))
        outcomes = import_rows(
            rows, source, batch_size=max(1, int(options["batch_size"])), names=names, dry_run=dry_run
        )
        with tqdm(total=len(rows), desc="importação", unit="implante", file=self.stderr) as bar:
            for outcome in outcomes:
                report.add(outcome)
                bar.update(1)
        lines = report.lines(dry_run=dry_run)
        for outcome in report.outcomes:  # what the operator must look at, whatever the verbosity
            if outcome.status == CONFERIR and int(options["verbosity"]) <= 1:
                self.stdout.write(f"  {outcome.line_text()}")
        if int(options["verbosity"]) > 1:
            for line in lines[:-1]:
                self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS(lines[-1]))
