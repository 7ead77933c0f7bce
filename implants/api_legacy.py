"""``GET /implants``: the old system's catalogue listing, as JSON (active implants only).

Public: each implant's picture is its first catalogue image, never a confirmed case (a patient's
X-ray; ``implants.selectors``)."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db.models import Count, Prefetch
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from implants.models import IMPLANT_DESCRIPTION_FIELDS, Implant
from implants.selectors import catalog_images

# The old listing's description fields: the catalogue's own list without the notes (never part of
# it) and is_active (only active implants are listed).
LISTED_FIELDS = [key for key in IMPLANT_DESCRIPTION_FIELDS if key not in ("notes", "is_active")]


def _listed(value: object) -> object:
    """Numbers as JSON numbers (the old system sent 3.5, not "3.50")."""
    return [float(v) for v in value] if isinstance(value, list) else value


@require_GET
def implant_list(request: HttpRequest) -> JsonResponse:
    implants = (
        Implant.objects.filter(is_active=True)
        .select_related("manufacturer")
        .annotate(_images=Count("reference_images"))
        .prefetch_related(Prefetch("reference_images", queryset=catalog_images(), to_attr="catalog"))
        .order_by("manufacturer__name", "name")
    )
    items = []
    for implant in implants:
        picture = implant.catalog[0] if implant.catalog else None
        image_url = request.build_absolute_uri(default_storage.url(picture.image.name)) if picture else None
        items.append(
            {
                "id": implant.pk,
                "name": implant.name,
                "manufacturer": implant.manufacturer.name,
                **{key: _listed(getattr(implant, key)) for key in LISTED_FIELDS},
                "image_url": image_url,
                "reference_images": implant._images,  # a count: every image, confirmed cases too
            }
        )
    return JsonResponse({"count": len(items), "implants": items})
