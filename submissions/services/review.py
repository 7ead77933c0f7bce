"""Staff review: confirming the implant really in an X-ray, which teaches the matcher.

Confirming stores the submission's X-ray as a new reference image of that implant (source
"confirmed case"); ``implants.services.reference_image_create`` queues its embedding, and from then
on similar X-rays find it. Un-confirming removes that reference image again.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from implants.models import Implant, ReferenceSource
from implants.services import reference_image_create, reference_image_delete
from kernel.errors import ApplicationError
from submissions.locks import submissions_select_for_update
from submissions.messages import NO_STORED_IMAGE
from submissions.models import Submission


def _read_image(submission: Submission) -> bytes:
    if not submission.image:
        raise ApplicationError(NO_STORED_IMAGE, field="image", code="no_image")
    with default_storage.open(submission.image.name, "rb") as fh:
        return fh.read()


def submission_confirm(*, submission: Submission, implant: Implant, user: AbstractBaseUser | None) -> Submission:
    """Record ``implant`` as the one in the X-ray and add the X-ray to its reference images.

    Confirming again with another implant replaces the earlier confirmation and its image.
    """
    if not implant.is_active:
        raise ApplicationError("Este implante está inativo.", field="implant", code="inactive_implant")
    submission = Submission.objects.select_related("confirmed_reference_image").get(pk=submission.pk)
    if submission.confirmed_implant_id == implant.pk and submission.confirmed_reference_image_id:
        return submission
    data = _read_image(submission)
    # If linking the new reference image below fails, this block rolls back and its file goes
    # with it (kernel.files).
    with transaction.atomic():
        locked = submissions_select_for_update().get(pk=submission.pk)
        previous = locked.confirmed_reference_image
        reference = reference_image_create(
            implant=implant, image_bytes=data, filename="confirmado.png", source=ReferenceSource.CONFIRMED_CASE
        )
        locked.confirmed_implant = implant
        locked.confirmed_by = user if user is not None and user.is_authenticated else None
        locked.confirmed_at = timezone.now()
        locked.confirmed_reference_image = reference
        locked.full_clean(exclude=["image", "token"])
        locked.save(update_fields=["confirmed_implant", "confirmed_by", "confirmed_at", "confirmed_reference_image"])
        if previous is not None:
            reference_image_delete(reference=previous)
    return locked


@transaction.atomic
def submission_unconfirm(*, submission: Submission) -> Submission:
    """Clear the confirmation and delete the reference image it created (row now, file on commit)."""
    locked = submissions_select_for_update().get(pk=submission.pk)
    reference = locked.confirmed_reference_image
    locked.confirmed_implant = None
    locked.confirmed_by = None
    locked.confirmed_at = None
    locked.confirmed_reference_image = None
    locked.save(update_fields=["confirmed_implant", "confirmed_by", "confirmed_at", "confirmed_reference_image"])
    if reference is not None:
        reference_image_delete(reference=reference)
    return locked
