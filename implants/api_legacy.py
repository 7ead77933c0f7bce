"""``GET /implants``: the old system's catalogue listing, as JSON (active implants only).

Public: each implant's picture is its first catalogue image, never a confirmed case (a patient's
X-ray; ``implants.selectors``)."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db.models import Count, Prefetch
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from implants.models import Implant
from implants.selectors import catalog_images


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
                "connection": implant.connection,
                "body_shape": implant.body_shape,
                "level": implant.level,
                "thread_shape": implant.thread_shape,
                "apex": implant.apex,
                "collar": implant.collar,
                "platform_switching": implant.platform_switching,
                "diameters_mm": [float(d) for d in implant.diameters_mm],
                "lengths_mm": [float(v) for v in implant.lengths_mm],
                "screwdriver": implant.screwdriver,
                "image_url": image_url,
                "reference_images": implant._images,  # a count: every image, confirmed cases too
            }
        )
    return JsonResponse({"count": len(items), "implants": items})
