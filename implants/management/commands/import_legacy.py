"""Import the old Raiox AI: its ``implants`` table (read-only) and its ``referencia/`` images.

    manage.py import_legacy --database-url postgresql://raiox_user@old-host/raiox \\
        --bucket raiox-images --endpoint-url https://nyc3.digitaloceanspaces.com \\
        [--legacy-model ViT-B-32/openai] [--dry-run] [--alias "Zimmer Biomet=Zimmer" ...]
    manage.py import_legacy --csv implants.csv --images-dir ./referencia-copy

Names are matched to ours (implants.names): "created", "linked" (one of ours, perhaps spelled
otherwise), "conferir" (resembles some of ours: nothing written; the line says which --alias to
add), "skipped" (with the reason). Idempotent: a second run reports every imported row
"unchanged". The dry run reports what the real run would do. See implants.legacy.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from tqdm import tqdm

from implants.bulk import CONFERIR, SKIPPED, ImportReport, bucket_problem
from implants.legacy import BucketImages, FolderImages, import_legacy_rows, rows_from_csv, rows_from_database
from implants.names import ALIAS_HELP, AliasError, parse_aliases
from kernel.commands import RaioxCommand


class Command(RaioxCommand):
    help = "Importa o catálogo do Raiox AI antigo (tabela implants + imagens referencia/)."

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--database-url", help="old PostgreSQL (read only), postgresql://user:pass@host/db")
        source.add_argument("--csv", type=Path, help="CSV export of the old implants table")
        images = parser.add_mutually_exclusive_group(required=True)
        images.add_argument("--bucket", help="old bucket name (S3 API; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
        images.add_argument("--images-dir", type=Path, help="folder holding a copy of the old referencia/ images")
        parser.add_argument(
            "--endpoint-url", help="S3 endpoint of the old bucket, e.g. https://nyc3.digitaloceanspaces.com"
        )
        parser.add_argument(
            "--legacy-model",
            default="",
            help="model id the old embeddings were made with (e.g. ViT-B-32/openai); without it they are dropped",
        )
        parser.add_argument("--dry-run", action="store_true", help="check every row and report; write nothing")
        parser.add_argument("--alias", action="append", default=[], help=ALIAS_HELP)
        parser.add_argument("--batch-size", type=int, default=32, help="reference images per embedding task")
        parser.add_argument(
            "--history",
            action="store_true",
            help="also import the old uploads (clientes/, uploads/, raiox-imagens/) as unlabelled submissions",
        )

    def handle(self, *args: object, **options: object) -> None:
        try:
            aliases = parse_aliases(options["alias"])
        except AliasError as exc:
            raise CommandError(str(exc)) from exc
        try:
            if options["database_url"]:
                rows = rows_from_database(options["database_url"])
            else:
                rows = rows_from_csv(options["csv"])
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(f"Não foi possível ler a tabela antiga: {exc}") from exc
        except Exception as exc:  # psycopg errors: wrong URL, no such table, refused connection
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CommandError(
                f"Não foi possível ler a tabela antiga ({first_line}): confira --database-url "
                "(usuário, senha, host, banco) e se a tabela implants existe."
            ) from exc
        if options["bucket"]:
            bucket = BucketImages(options["bucket"], options["endpoint_url"])
            try:
                bucket.check()
            except Exception as exc:  # botocore: no credentials, no such bucket, endpoint unreachable
                raise CommandError(bucket_problem(options["bucket"], exc)) from exc
            reader = bucket.read
        else:
            if not options["images_dir"].is_dir():
                raise CommandError(f"Pasta de imagens não encontrada: {options['images_dir']}")
            reader = FolderImages(options["images_dir"]).read
        report = ImportReport()
        outcomes = import_legacy_rows(
            rows,
            reader,
            legacy_model=str(options["legacy_model"] or ""),
            dry_run=bool(options["dry_run"]),
            batch_size=max(1, int(options["batch_size"])),
            aliases=aliases,
        )
        with tqdm(total=len(rows), desc="sistema antigo", unit="linha", file=self.stderr) as bar:
            for outcome in outcomes:
                report.add(outcome)
                bar.update(1)
        if options["dry_run"]:
            self.stdout.write("Simulação (--dry-run): nada foi gravado.")
        for line in report.lines(dry_run=bool(options["dry_run"])):
            self.stdout.write(line)
        counts = report.counts()
        style = self.style.WARNING if counts[SKIPPED] or counts[CONFERIR] else self.style.SUCCESS
        self.stdout.write(
            style(
                f"{len(rows)} linhas lidas, {counts[SKIPPED]} ignoradas, {counts[CONFERIR]} a conferir"
                + (
                    " (veja as linhas 'conferir' acima: cada uma diz que --alias acrescentar)."
                    if counts[CONFERIR]
                    else "."
                )
            )
        )
        if options["history"]:
            if not options["bucket"]:
                raise CommandError("--history lê o bucket antigo: use --bucket.")
            # By command name: the catalogue app never imports submissions (dependencies run one way).
            call_command(
                "import_legacy_history",
                bucket=options["bucket"],
                endpoint_url=options["endpoint_url"],
                dry_run=bool(options["dry_run"]),
                stdout=self.stdout,
                stderr=self.stderr,
            )
