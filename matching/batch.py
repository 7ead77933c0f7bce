"""The bulk embedding task: many reference images, one forward pass per call.

Queued by ``implants.services.reference_images_queue_embedding`` (imports of a catalogue or of the
old system) under this module's path (``implants.services.EMBED_REFERENCE_BATCH_TASK``; tasks
already queued name it, so it stays here); the work is ``matching.services.reference_images_embed``.
"""

from __future__ import annotations

from matching import services


def embed_reference_images(reference_ids: list[int]) -> int:
    """Embed the given reference images with the running model; returns how many were written."""
    return services.reference_images_embed(reference_ids=reference_ids)
