"""Which reference images may be shown, and to whom.

A reference image is either a catalogue picture of the implant — added to the catalogue
("catalog") or imported from the old system's ``referencia/`` pictures ("imported") — or a
*confirmed case*: a dentist's X-ray that staff confirmed (``submissions.services.review``), kept
so that similar X-rays find its implant. A confirmed case is a patient's radiograph — health data,
and panoramic films often carry the patient's name burned in — so it is for matching only: it is
searched, never shown outside the staff admin. The rule is therefore "anything but a confirmed
case" (``HIDDEN_SOURCES``): a source added later is shown unless it is listed there. Every public
or API listing and every result card takes its pictures from ``catalog_images`` / ``is_showable``
(the one rule); the search in ``matching`` still reads all of them.
Inside the staff admin, only staff holding ``view_patient_data`` see (and so may move or delete)
confirmed cases (``reference_images_for``); catalogue editors see the catalogue pictures only.
The catalogue export follows the same rule (``implants.catalog_io``).
"""

from __future__ import annotations

from django.db.models import QuerySet

from implants.models import ReferenceImage, ReferenceSource
from kernel.permissions import may_view_patient_data

# The sources never shown outside the staff admin: patients' X-rays.
HIDDEN_SOURCES = frozenset({ReferenceSource.CONFIRMED_CASE})


def catalog_images() -> QuerySet[ReferenceImage]:
    """The reference images that may be shown outside staff admin pages (catalogue pictures,
    imported ones included), oldest first: the first one is the implant's picture in listings."""
    return ReferenceImage.objects.exclude(source__in=HIDDEN_SOURCES).order_by("id")


def confirmed_cases() -> QuerySet[ReferenceImage]:
    """The reference images that are patients' X-rays (never shown outside the staff admin)."""
    return ReferenceImage.objects.filter(source__in=HIDDEN_SOURCES)


def is_showable(reference: ReferenceImage | None) -> bool:
    """Whether this reference image may be shown outside staff admin pages."""
    return reference is not None and reference.source not in HIDDEN_SOURCES


def reference_image_shown_to_staff(
    reference: ReferenceImage | None, *, with_patient_data: bool
) -> ReferenceImage | None:
    """The matched reference image a staff page may show beside a submission: a catalogue picture
    always; a confirmed case (another patient's X-ray) only to staff holding ``view_patient_data``,
    None otherwise (the page says the picture is restricted). The same rule as the implants admin's
    ``reference_images_for``, for one picture already in hand."""
    if reference is None or not (with_patient_data or is_showable(reference)):
        return None
    return reference


def reference_images_for(user) -> QuerySet[ReferenceImage]:
    """The reference images ``user`` may see in the staff admin: all of them with
    ``view_patient_data``, the catalogue pictures otherwise."""
    if may_view_patient_data(user):
        return ReferenceImage.objects.order_by("id")
    return catalog_images()
