"""The bulk embedding task: many reference images, one forward pass per call.

Queued by ``implants.services.reference_images_queue_embedding`` (imports of a catalogue or of the
old system). Like ``embed_reference_image`` it is idempotent: rows already embedded by the running
model are skipped, so a re-delivered task does nothing twice, and an old embedding kept under
another model id is replaced by one of the running model.
"""

from __future__ import annotations

import logging

from implants.models import ReferenceImage
from implants.services import reference_image_set_embedding
from kernel.imaging import InvalidImage
from matching.images import MISSING_CODE, stored_image_load
from matching.pipeline import reusable_embedding
from matching.workers import worker_embedder

logger = logging.getLogger(__name__)


def embed_reference_images(reference_ids: list[int]) -> int:
    """Embed the given reference images with the running model; returns how many were written."""
    embedder = worker_embedder()
    model_id = embedder.model_id
    rows = list(
        ReferenceImage.objects.filter(pk__in=list(reference_ids)).values_list(
            "pk", "image", "content_hash", "embedding_model", "embedding"
        )
    )
    written = 0
    pending: list[tuple[int, object]] = []
    for pk, name, content_hash, current_model, current in rows:
        if current is not None and current_model == model_id:
            continue  # already right (kept legacy embedding of this model, or a re-delivered task)
        vector = reusable_embedding(content_hash, model_id, exclude_reference=pk)
        if vector is not None:
            reference_image_set_embedding(reference_id=pk, embedding=vector, model_id=model_id)
            written += 1
            continue
        try:
            pending.append((pk, stored_image_load(embedder, name)))
        except InvalidImage as exc:  # retrying will not help; the admin shows it pending
            what = "has no file" if exc.code == MISSING_CODE else "cannot be decoded"
            logger.error("embed_reference_images: reference image %s %s", pk, what)
        except Exception:  # storage trouble: skipped like an undecodable one, as it always was
            logger.error("embed_reference_images: reference image %s cannot be decoded", pk)
    vectors = embedder.embed_images([image for _, image in pending])
    for (pk, _), vector in zip(pending, vectors, strict=True):
        reference_image_set_embedding(reference_id=pk, embedding=vector, model_id=model_id)
        written += 1
    return written
