"""Crop & re-match: the region of a stored X-ray that the dentist marked, sent again as a new
Submission linked to the original. The dentist, patient and tooth are the original's, and go
through the same field specification as on every other route.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image

from kernel.errors import ApplicationError
from submissions.intake import fields
from submissions.models import Submission
from submissions.services import IntakeRecord


def _parse_box(box: Mapping[str, object], width: int, height: int) -> dict[str, int]:
    try:
        x, y, w, h = (round(float(box[k])) for k in ("x", "y", "width", "height"))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise ApplicationError("Desenhe um retângulo em volta do implante.", field="box", code="invalid_box") from exc
    # Clamp to the image: a rectangle dragged past the edge means "up to the edge".
    x0, y0 = max(0, min(x, width)), max(0, min(y, height))
    x1, y1 = max(0, min(x + w, width)), max(0, min(y + h, height))
    min_side = settings.RAIOX_MIN_IMAGE_SIDE
    if x1 - x0 < min_side or y1 - y0 < min_side:
        raise ApplicationError(
            f"Recorte pequeno demais: marque uma área de pelo menos {min_side} × {min_side} pixels da imagem.",
            field="box",
            code="box_too_small",
        )
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


def intake_from_crop(parent: Submission, box: Mapping[str, object]) -> IntakeRecord:
    """The region ``box`` (image pixels, clamped to the image) of ``parent``'s X-ray as an intake."""
    if not parent.image:
        raise ApplicationError("A imagem ainda não foi recebida; tente de novo em instantes.", code="no_image")
    try:
        with default_storage.open(parent.image.name, "rb") as fh:
            original = Image.open(io.BytesIO(fh.read()), formats=("PNG", "JPEG"))
            original.load()
    except (OSError, SyntaxError, ValueError) as exc:
        # Until the worker has decoded it into its PNG, the stored file is the sender's original
        # (DICOM, HEIC...), which the web process does not decode.
        raise ApplicationError(
            "A imagem ainda está sendo processada; tente de novo em instantes.", code="not_ready", status=409
        ) from exc
    clean_box = _parse_box(box, original.width, original.height)
    region = original.crop(
        (clean_box["x"], clean_box["y"], clean_box["x"] + clean_box["width"], clean_box["y"] + clean_box["height"])
    )
    out = io.BytesIO()
    region.save(out, format="PNG")
    return fields.intake_record(
        source=parent.source,
        answers={name: getattr(parent, name) for name in fields.ANSWERS},
        image_bytes=out.getvalue(),
        original_filename="recorte.png",
        parent_id=parent.pk,
        crop_box=clean_box,
    )
