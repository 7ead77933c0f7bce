"""``GET /implants``: the old system's catalogue listing, as JSON (active implants only)."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.db.models import Prefetch
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from implants.models import Implant, ReferenceImage


@require_GET
def implant_list(request: HttpRequest) -> JsonResponse:
    implants = (
        Implant.objects.filter(is_active=True)
        .select_related("manufacturer")
        .prefetch_related(Prefetch("reference_images", queryset=ReferenceImage.objects.order_by("id")))
        .order_by("manufacturer__name", "name")
    )
    items = []
    for implant in implants:
        references = list(implant.reference_images.all())
        image_url = request.build_absolute_uri(default_storage.url(references[0].image.name)) if references else None
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
                "reference_images": len(references),
            }
        )
    return JsonResponse({"count": len(items), "implants": items})
