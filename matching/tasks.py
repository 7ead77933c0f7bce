"""django-q2 tasks of the matching app: ids in, one service call (``matching.services``).

Queued by dotted path (``submissions.services.PROCESS_TASK``, ``implants.services.EMBED_REFERENCE_TASK``),
so the apps below never import this module, nor torch.
"""

from __future__ import annotations

from matching import services


def process_submission(submission_id: int) -> str:
    """Embed a submission's X-ray (or reuse an embedding), search, save the Matches, mark done."""
    return services.submission_process(submission_id=submission_id)


def embed_reference_image(reference_id: int) -> str | None:
    """Embed one catalogue reference image."""
    return services.reference_image_embed(reference_id=reference_id)


def retrain_when_enough_cases(**options: object) -> str:
    """Scheduled (ensure_schedules, only when RAIOX_AUTO_RETRAIN_MIN_NEW_CASES > 0): retrain once
    enough confirmed cases have accumulated; evaluate; leave the activation to staff. ``options``:
    train_matcher's (views_per_image, epochs, ...), for a smaller run than the defaults."""
    from matching.training import retrain_if_due

    return retrain_if_due(**options)


def reembed_catalogue() -> None:
    """After staff switched the model in the admin (``services.REEMBED_TASK``): the catalogue
    re-embedded by the model the activation manifest now names."""
    services.catalogue_reembed_stale()
