"""Re-embed reference images (and optionally submissions) with the current model.

``--stale`` (the default) picks only rows whose embedding is missing or from another model id, so
an interrupted run simply continues where it stopped. ``--all`` recomputes everything. Rows are
embedded in batches (one forward pass per batch) and each batch is saved before the next starts.
Until the catalogue is re-embedded, the search only sees rows of the current model: models are
never mixed. The model id includes the preprocessing version (``matching.canonical``), so changing
how pictures are framed is a model switch like any other: run this after it.

Progress: a bar per kind of row with its rate and time left, and the count of rows still to do
under the current model id before it starts.
"""

from __future__ import annotations

from django.db.models import Q
from tqdm import tqdm

from implants.models import ReferenceImage
from implants.services import reference_image_set_embedding
from kernel.commands import RaioxCommand
from kernel.imaging import InvalidImage
from matching.images import stored_image_load
from matching.pipeline import reusable_embedding
from matching.workers import worker_embedder
from submissions.models import Submission


class Command(RaioxCommand):
    help = "Recalcula os embeddings com o modelo atual (imagens de referência e, opcionalmente, envios)."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--stale", action="store_true", help="only rows not embedded by the current model (default)")
        which.add_argument("--all", action="store_true", help="every row, even those already current")
        parser.add_argument("--submissions", action="store_true", help="also re-embed stored submissions")
        parser.add_argument("--batch-size", type=int, default=16)

    def handle(self, *args: object, **options: object) -> None:
        embedder = worker_embedder()
        model_id = embedder.model_id
        redo_all = bool(options["all"])
        batch_size = max(1, int(options["batch_size"]))
        self.stdout.write(f"Model: {model_id}{' (UNTRAINED)' if embedder.untrained else ''}")

        refs = ReferenceImage.objects.all()
        if not redo_all:
            refs = refs.filter(Q(embedding__isnull=True) | ~Q(embedding_model=model_id))
        total = ReferenceImage.objects.count()
        self.stdout.write(f"Reference images to embed: {refs.count()} of {total}")
        done = self._run(
            "imagens de referência",
            list(refs.order_by("pk").values_list("pk", "image", "content_hash")),
            embedder,
            batch_size,
            not redo_all,
            lambda pk, vector: reference_image_set_embedding(reference_id=pk, embedding=vector, model_id=model_id),
        )
        self.stdout.write(f"Reference images embedded: {done}")

        if options["submissions"]:
            from submissions.services import submission_set_embedding

            # Only X-rays that were embedded before: a film answered per fixture (several implants)
            # or where no implant was found has no vector of its own.
            subs = Submission.objects.exclude(image="").exclude(embedding_model="")
            if not redo_all:
                subs = subs.filter(Q(embedding__isnull=True) | ~Q(embedding_model=model_id))
            done = self._run(
                "envios",
                list(subs.order_by("pk").values_list("pk", "image", "content_hash")),
                embedder,
                batch_size,
                not redo_all,
                lambda pk, vector: submission_set_embedding(submission_id=pk, embedding=vector, model_id=model_id),
            )
            self.stdout.write(f"Submissions embedded: {done}")

    def _run(self, label, rows, embedder, batch_size, reuse, save) -> int:
        done = 0
        with tqdm(total=len(rows), desc=label, unit="img", file=self.stderr) as bar:
            for start in range(0, len(rows), batch_size):
                batch = rows[start : start + batch_size]
                to_embed: list[tuple[int, object]] = []
                for pk, name, content_hash in batch:
                    # --all means recompute: an identical image's embedding would be the stale one.
                    reused = reusable_embedding(content_hash, embedder.model_id) if reuse else None
                    if reused is not None:
                        save(pk, reused)
                        done += 1
                        continue
                    try:
                        to_embed.append((pk, stored_image_load(embedder, name)))
                    except InvalidImage as exc:  # gone or undecodable: said, and the run goes on
                        self.stderr.write(f"\nskipped #{pk}: {exc.code}")
                    except OSError as exc:  # storage trouble: the row stays stale for the next run
                        self.stderr.write(f"\nskipped #{pk}: {type(exc).__name__}")
                vectors = embedder.embed_images([image for _, image in to_embed])
                for (pk, _), vector in zip(to_embed, vectors, strict=True):
                    save(pk, vector)
                    done += 1
                bar.update(len(batch))
        return done
