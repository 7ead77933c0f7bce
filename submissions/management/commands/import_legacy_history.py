"""Import the old bucket's uploads (clientes/, uploads/, raiox-imagens/) as unlabelled past
submissions, without e-mails. Also run by ``import_legacy --history``. See submissions.legacy_history."""

from __future__ import annotations

from collections import Counter

from tqdm import tqdm

from kernel.commands import RaioxCommand
from submissions.legacy_history import history_keys, import_history


class Command(RaioxCommand):
    help = "Importa os envios antigos do bucket como envios passados sem rótulo (sem e-mails)."

    def add_arguments(self, parser):
        parser.add_argument("--bucket", required=True)
        parser.add_argument("--endpoint-url")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: object, **options: object) -> None:
        import boto3

        client = boto3.client("s3", endpoint_url=options["endpoint_url"] or None)
        keys = history_keys(client, options["bucket"])
        counts: Counter[str] = Counter()
        with tqdm(total=len(keys), desc="envios antigos", unit="imagem", file=self.stderr) as bar:
            for outcome in import_history(client, options["bucket"], keys, dry_run=bool(options["dry_run"])):
                counts[outcome.status] += 1
                if outcome.reason:
                    self.stdout.write(f"  {outcome.ref}: {outcome.status} ({outcome.reason})")
                bar.update(1)
        self.stdout.write(
            "Envios antigos: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
            if counts
            else "Envios antigos: nenhuma imagem encontrada."
        )
