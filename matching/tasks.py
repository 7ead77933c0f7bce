"""django-q2 tasks. They take ids, never objects, and call services for every write.

Both tasks are idempotent: a re-delivered task (worker killed, retry) leaves one result.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.storage import default_storage

from implants.models import ReferenceImage
from implants.services import reference_image_set_embedding
from matching.embedder import get_embedder
from matching.search import nearest_implants
from raiox.errors import ApplicationError
from submissions import services as submission_services

logger = logging.getLogger(__name__)


class PoisonImage(Exception):
    """The stored image cannot be decoded: retrying will not help."""


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def embed_reference_image(reference_id: int) -> str | None:
    reference = ReferenceImage.objects.filter(pk=reference_id).first()
    if reference is None:
        return None  # deleted before the worker got to it
    embedder = get_embedder()
    # Test against None: a pgvector value is a numpy array, ambiguous in a boolean context.
    if reference.embedding is not None and reference.embedding_model == embedder.model_id:
        return embedder.model_id
    vector = embedder.embed_bytes(_read(reference.image.name))
    reference_image_set_embedding(reference_id=reference_id, embedding=vector, model_id=embedder.model_id)
    return embedder.model_id


def process_submission(submission_id: int) -> str | None:
    submission = submission_services.submission_start_processing(submission_id=submission_id)
    if submission is None:
        return "already done"
    if not submission.image and submission.remote_image_url:
        # Jotform keeps uploads on its own host: fetch the file here, not in the webhook's answer.
        try:
            submission = submission_services.submission_fetch_remote_image(submission_id=submission_id)
        except ApplicationError as exc:  # permanent: 404, not an image, too big, refused host
            submission_services.submission_fail(submission_id=submission_id, reason=exc.message)
            return "failed"
        except Exception:
            # Transient (network, 5xx): raise so django-q delivers the task again; on the last
            # attempt, report it instead of dropping it silently.
            if submission.attempts >= settings.Q_CLUSTER.get("max_attempts", 1):
                submission_services.submission_fail(
                    submission_id=submission_id,
                    reason="Não foi possível baixar a imagem do servidor de origem. Envie-a novamente.",
                )
                return "failed"
            raise
    embedder = get_embedder()
    try:
        data = _read(submission.image.name)
        try:
            image = embedder.load_image(data)
        except Exception as exc:
            raise PoisonImage from exc
        vector = embedder.embed_images([image])[0]
    except PoisonImage:
        submission_services.submission_fail(
            submission_id=submission_id,
            reason="Não foi possível ler a imagem enviada. Envie o arquivo original da radiografia.",
        )
        return "failed"
    hits = nearest_implants(vector, model_id=embedder.model_id)
    submission_services.submission_record_result(
        submission_id=submission_id,
        embedding=vector,
        model_id=embedder.model_id,
        candidates=[submission_services.MatchCandidate(h.implant_id, h.reference_image_id, h.similarity) for h in hits],
    )
    return "done"
