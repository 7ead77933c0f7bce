"""The matching work, run by the workers: embed an X-ray or a catalogue image, search, record.

Typed keyword-only functions called by ``matching.tasks`` (which only take ids). Writes go through
the owning app's services (``submissions.services``, ``implants.services``); this module adds the
workers' own state (``WorkerState``).

Both jobs are idempotent: a re-delivered task (worker killed, retry) leaves one result. Transient
failures (storage or database unreachable) raise, so django-q retries the task (Q_CLUSTER retry /
max_attempts); an image that cannot be decoded fails its own submission with a reason and returns
normally, so it is not retried and never blocks the queue. Logs carry ids only, never patient data.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from implants.models import REFINE_FIELDS, ReferenceImage
from implants.services import reference_image_set_embedding
from kernel.errors import ApplicationError
from kernel.imaging import InvalidImage
from matching.embedder import Embedder, get_embedder
from matching.models import WorkerState
from matching.search import nearest_implants
from submissions import services as submission_services
from submissions.models import DentistFeedback, Submission, Verdict

logger = logging.getLogger(__name__)

# --- the workers' state (read by web processes through matching.state) -------------------------


@transaction.atomic
def worker_state_record(*, model_id: str, untrained: bool, device: str, build_seconds: float = 0.0) -> WorkerState:
    """Called by a worker when it has built its model (and to say it is still alive)."""
    now = timezone.now()
    state, _ = WorkerState.objects.update_or_create(
        hostname=socket.gethostname()[:255],
        pid=os.getpid(),
        defaults={
            "model_id": model_id,
            "untrained": untrained,
            "device": device,
            "build_seconds": build_seconds,
            "last_seen": now,
        },
        create_defaults={
            "model_id": model_id,
            "untrained": untrained,
            "device": device,
            "build_seconds": build_seconds,
            "started_at": now,
            "last_seen": now,
        },
    )
    return state


def worker_state_touch() -> bool:
    """A cheap heartbeat: the dashboard tells live workers from dead ones by last_seen. False when
    this process has no row (then the caller records it again)."""
    return bool(
        WorkerState.objects.filter(hostname=socket.gethostname()[:255], pid=os.getpid()).update(
            last_seen=timezone.now()
        )
    )


# --- the jobs ----------------------------------------------------------------------------------

HEARTBEAT_SECONDS = 60.0

UNREADABLE_IMAGE = "Não foi possível ler a imagem enviada. Envie o arquivo original da radiografia."
MISSING_IMAGE = "A imagem desta radiografia não foi encontrada. Envie-a novamente."
REMOTE_UNREACHABLE = "Não foi possível baixar a imagem do servidor de origem. Envie-a novamente."
STORAGE_UNREACHABLE = (
    "Não conseguimos ler a radiografia no armazenamento por um problema temporário nosso. Envie-a novamente."
)
NO_IMAGE = "Nenhuma imagem foi recebida com este envio. Envie a radiografia novamente."

_state_recorded_at: float | None = None


class PoisonImage(Exception):
    """The stored image cannot be decoded: retrying will not help."""


def worker_embedder() -> Embedder:
    """The process's model, recorded in the database (once, then as a heartbeat) so that web
    processes, which never load torch, can tell which model answers and whether it is untrained."""
    global _state_recorded_at
    embedder = get_embedder()
    now = time.monotonic()
    # The heartbeat re-creates the row if it was removed (e.g. the table was cleared by staff).
    if _state_recorded_at is None or (now - _state_recorded_at > HEARTBEAT_SECONDS and not worker_state_touch()):
        worker_state_record(
            model_id=embedder.model_id,
            untrained=embedder.untrained,
            device=embedder.device,
            build_seconds=embedder.build_seconds,
        )
        _state_recorded_at = now
    elif now - _state_recorded_at > HEARTBEAT_SECONDS:
        _state_recorded_at = now
    return embedder


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def reusable_embedding(
    content_hash: str,
    model_id: str,
    *,
    exclude_submission: int | None = None,
    exclude_reference: int | None = None,
) -> list[float] | None:
    """An embedding already computed by ``model_id`` for identical content, if any: the same
    image is never run through the model twice."""
    if not content_hash:
        return None
    refs = ReferenceImage.objects.filter(content_hash=content_hash, embedding_model=model_id, embedding__isnull=False)
    if exclude_reference is not None:
        refs = refs.exclude(pk=exclude_reference)
    found = refs.values_list("embedding", flat=True).first()
    if found is None:
        subs = Submission.objects.filter(content_hash=content_hash, embedding_model=model_id, embedding__isnull=False)
        if exclude_submission is not None:
            subs = subs.exclude(pk=exclude_submission)
        found = subs.values_list("embedding", flat=True).first()
    # Test against None: a pgvector value is a numpy array, ambiguous in a boolean context.
    return None if found is None else [float(x) for x in found]


def _embed_stored(embedder: Embedder, name: str) -> list[float]:
    try:
        data = _read(name)
    except FileNotFoundError as exc:  # gone for good: a retry cannot bring it back
        raise PoisonImage(MISSING_IMAGE) from exc
    try:
        image = embedder.load_image(data)
    except Exception as exc:  # any decoder error: this file will never decode
        raise PoisonImage(UNREADABLE_IMAGE) from exc
    return embedder.embed_images([image])[0]


def reference_image_embed(*, reference_id: int) -> str | None:
    """Embed one catalogue image with the workers' model (or reuse an identical image's
    embedding); returns the model id, or None when there is nothing to embed."""
    reference = ReferenceImage.objects.filter(pk=reference_id).first()
    if reference is None:
        return None  # deleted before the worker got to it
    embedder = worker_embedder()
    if reference.embedding is not None and reference.embedding_model == embedder.model_id:
        return embedder.model_id
    vector = reusable_embedding(reference.content_hash, embedder.model_id, exclude_reference=reference.pk)
    if vector is None:
        try:
            vector = _embed_stored(embedder, reference.image.name)
        except PoisonImage:
            # A catalogue image that cannot be decoded stays unembedded (and out of the search);
            # the admin shows it without an embedding. Retrying would not help.
            logger.error("embed_reference_image: reference image %s cannot be decoded", reference_id)
            return None
    reference_image_set_embedding(reference_id=reference_id, embedding=vector, model_id=embedder.model_id)
    return embedder.model_id


def _refine_filter(filters: object) -> dict[str, str]:
    if not isinstance(filters, dict):
        return {}
    return {key: str(value) for key, value in filters.items() if key in REFINE_FIELDS and value}


def _rejected_implants(submission_id: int) -> Sequence[int]:
    return list(
        DentistFeedback.objects.filter(submission_id=submission_id, verdict=Verdict.NOT_THIS).values_list(
            "implant_id", flat=True
        )
    )


def _last_attempt(submission: Submission) -> bool:
    """django-q delivers a task that raised again, up to max_attempts: on the last one a transient
    failure is reported to the dentist (failed, with a reason) instead of leaving the submission
    in "processing" for ever."""
    return submission.attempts >= settings.Q_CLUSTER.get("max_attempts", 1)


def _fetch_remote(submission: Submission) -> Submission | None:
    """Decode the image (intake kept the original, reading its headers only) or fetch the one the
    sender gave as a URL (Jotform keeps uploads on its own host): the worker does both, never the
    web process. None when the submission failed (reason set)."""
    try:
        return submission_services.submission_prepare_image(submission_id=submission.pk)
    except InvalidImage as exc:  # poison: a crafted or broken file never decodes, so never retried
        logger.warning("process_submission: submission %s has an unreadable image", submission.pk)
        # A stored original passed the intake's header check: its pixel data is what is broken.
        reason = UNREADABLE_IMAGE if submission.image else exc.message
        submission_services.submission_fail(submission_id=submission.pk, reason=reason)
        return None
    except ApplicationError as exc:  # permanent: 404, too big, refused host
        submission_services.submission_fail(submission_id=submission.pk, reason=exc.message)
        return None
    except Exception:
        # Transient (network, 5xx, storage): raise so django-q delivers the task again; on the last
        # attempt, report it to the dentist instead of dropping it silently.
        if _last_attempt(submission):
            reason = STORAGE_UNREACHABLE if submission.image else REMOTE_UNREACHABLE
            submission_services.submission_fail(submission_id=submission.pk, reason=reason)
            return None
        raise


def submission_process(*, submission_id: int) -> str:
    """Embed a submission's X-ray (or reuse an embedding), search, save the Matches, mark done.

    Also the re-ranking step of "refine": when a submission already has an embedding of the
    current model, only the search runs again, under ``refine_filters`` and without the implants
    the dentist rejected.
    """
    if not Submission.objects.filter(pk=submission_id).exists():
        return "missing"  # deleted before the worker got to it
    submission = submission_services.submission_start_processing(submission_id=submission_id)
    if submission is None:
        return "already done"
    embedder = worker_embedder()
    model_id = embedder.model_id

    if submission.embedding is not None and submission.embedding_model == model_id:
        vector = [float(x) for x in submission.embedding]
    else:
        if not submission.content_hash and (submission.image or submission.remote_image_url):
            submission = _fetch_remote(submission)
            if submission is None:
                return "failed"
        vector = reusable_embedding(submission.content_hash, model_id, exclude_submission=submission.pk)
        if vector is None:
            if not submission.image:
                submission_services.submission_fail(submission_id=submission_id, reason=NO_IMAGE)
                return "failed"
            try:
                vector = _embed_stored(embedder, submission.image.name)
            except PoisonImage as exc:
                logger.warning("process_submission: submission %s has an unreadable image", submission_id)
                submission_services.submission_fail(submission_id=submission_id, reason=str(exc))
                return "failed"
            except Exception:
                # Storage unreachable (outage, network): retried by django-q; reported on the last try.
                if _last_attempt(submission):
                    logger.warning("process_submission: submission %s: storage unreachable, giving up", submission_id)
                    submission_services.submission_fail(submission_id=submission_id, reason=STORAGE_UNREACHABLE)
                    return "failed"
                raise

    hits = nearest_implants(
        vector,
        model_id=model_id,
        implant_filter=_refine_filter(submission.refine_filters),
        exclude_implants=_rejected_implants(submission_id),
    )
    submission_services.submission_record_result(
        submission_id=submission_id,
        embedding=vector,
        model_id=model_id,
        candidates=[submission_services.MatchCandidate(h.implant_id, h.reference_image_id, h.similarity) for h in hits],
    )
    return "done"
