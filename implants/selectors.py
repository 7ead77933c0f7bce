"""Which reference images may be shown, and to whom.

A reference image is either a catalogue picture of the implant or a *confirmed case*: a dentist's
X-ray that staff confirmed (``submissions.services.review``), kept so that similar X-rays find
its implant. A confirmed case is a patient's radiograph — health data, and panoramic films often
carry the patient's name burned in — so it is for matching only: it is searched, never shown
outside the staff admin. Every public or API listing and every result card takes its pictures
from ``catalog_images`` (the one rule); the search in ``matching`` still reads all of them.
"""

from __future__ import annotations

from django.db.models import QuerySet

from implants.models import ReferenceImage, ReferenceSource


def catalog_images() -> QuerySet[ReferenceImage]:
    """The reference images that may be shown outside staff admin pages (catalogue pictures),
    oldest first: the first one is the implant's picture in listings."""
    return ReferenceImage.objects.filter(source=ReferenceSource.CATALOG).order_by("id")


def is_showable(reference: ReferenceImage | None) -> bool:
    """Whether this reference image may be shown outside staff admin pages."""
    return reference is not None and reference.source == ReferenceSource.CATALOG
