"""The region rules of one X-ray: the implants the dentist marked (``[{x, y, width, height, tooth}]``, image
pixels, FDI tooth), each matched on its own as a child Submission of the film. Crop & re-match on
the result page is the one-region case (``submissions.intake.crop``). Below the services: they
apply these rules under the film's lock (``submissions.services.regions``) and when a film is
stored with its regions (``submissions.services.intake``).

Part of the intake field specification (``submissions.fields``): every refusal is a 400
``{"error","field":"regions",...}`` naming the region, checked before anything is stored. A region
must lie inside the image, be at least ``RAIOX_MIN_IMAGE_SIDE`` pixels on each side, not overlap
another, and a film has at most ``RAIOX_MAX_REGIONS``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image

from kernel.errors import ApplicationError
from kernel.imaging import inspect_image
from kernel.parsing import parse_json
from submissions import fields
from submissions.fields import IntakeRecord
from submissions.models import Submission

FIELD = "regions"


@dataclass(frozen=True)
class Region:
    x: int
    y: int
    width: int
    height: int
    tooth: str

    def box(self, number: int, image_width: int, image_height: int) -> dict:
        """What the child submission keeps (``crop_box``): the rectangle, its number on the film
        and the film's size (the page draws the numbered rectangles from these)."""
        return {
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "region": number,
            "image_width": image_width,
            "image_height": image_height,
        }

    def overlaps(self, other: Region) -> bool:
        return (
            self.x < other.x + other.width
            and other.x < self.x + self.width
            and self.y < other.y + other.height
            and other.y < self.y + self.height
        )


def _refuse(message: str, code: str, field: str = FIELD) -> ApplicationError:
    return ApplicationError(message, field=field, code=code)


# A coordinate is a pixel of a film: none of its sides exceeds the pixel cap (and a text value
# needs no more characters than such a number with a fraction). Checked before any arithmetic, so
# a 400-digit integer is a 400, never an OverflowError.
_NUMBER_TEXT_LIMIT = 32


def _number(value: object, name: str, label: str, field: str) -> int:
    message = f"{label}: {name} deve ser um número."
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _refuse(message, "invalid_region", field)
    if isinstance(value, str) and len(value) > _NUMBER_TEXT_LIMIT:
        raise _refuse(message, "invalid_region", field)
    bound = settings.RAIOX_MAX_IMAGE_PIXELS
    if isinstance(value, int) and abs(value) > bound:
        raise _refuse(f"{label}: {name} fora da imagem.", "region_outside_image", field)
    try:
        number = float(value)
    except (ValueError, OverflowError) as exc:
        raise _refuse(message, "invalid_region", field) from exc
    if number != number:
        raise _refuse(message, "invalid_region", field)
    if abs(number) > bound:
        raise _refuse(f"{label}: {name} fora da imagem.", "region_outside_image", field)
    return round(number)


def parse_region(
    raw: object,
    label: str,
    *,
    width: int,
    height: int,
    field: str = FIELD,
    clamp: bool = False,
    tooth_required: bool = True,
    small: str = "pequena",  # agrees with the label: "Região 2 pequena", "Recorte pequeno"
) -> Region:
    """One region, checked against an image of ``width`` × ``height``; ``label`` names it in the
    messages ("Região 2", or "Recorte" on the page). ``clamp``: a rectangle dragged past the edge on
    the page means "up to the edge"; API clients get a refusal instead."""
    if not isinstance(raw, Mapping):
        raise _refuse(f"{label}: esperado um objeto com x, y, width, height e tooth.", "invalid_region", field)
    try:
        x, y, w, h = (_number(raw[k], k, label, field) for k in ("x", "y", "width", "height"))
    except KeyError as exc:
        raise _refuse(f"{label}: faltou {exc.args[0]}.", "invalid_region", field) from exc
    try:
        tooth = fields.tooth(raw.get("tooth"), required=tooth_required)
    except ApplicationError as exc:
        raise _refuse(f"{label}: {exc.message}", exc.code, field) from exc
    if clamp:
        x0, y0 = max(0, min(x, width)), max(0, min(y, height))
        x, y, w, h = x0, y0, max(0, min(x + w, width)) - x0, max(0, min(y + h, height)) - y0
    elif x < 0 or y < 0 or x + w > width or y + h > height or w <= 0 or h <= 0:
        raise _refuse(
            f"{label} está fora da imagem (a imagem tem {width} × {height} pixels).", "region_outside_image", field
        )
    side = settings.RAIOX_MIN_IMAGE_SIDE
    if w < side or h < side:
        raise _refuse(
            f"{label} {small} demais: marque uma área de pelo menos {side} × {side} pixels da imagem.",
            "region_too_small",
            field,
        )
    return Region(x, y, w, h, tooth)


def parse_regions(raw: object, *, width: int, height: int) -> list[Region]:
    """The list sent by an API client or webhook: a JSON list, or that list as a JSON string
    (multipart forms). Empty or absent: no regions (the whole film is matched)."""
    if raw in (None, "", []):
        return []
    if isinstance(raw, str):
        try:
            raw = parse_json(raw, field=FIELD)  # the one bounded parser (depth, numbers)
        except ApplicationError as exc:
            raise _refuse("regions deve ser uma lista JSON de regiões.", "invalid_regions") from exc
    if not isinstance(raw, list):
        raise _refuse("regions deve ser uma lista de regiões.", "invalid_regions")
    _check_count(len(raw))
    regions = [parse_region(item, f"Região {n}", width=width, height=height) for n, item in enumerate(raw, start=1)]
    for i, a in enumerate(regions):
        for j in range(i + 1, len(regions)):
            if a.overlaps(regions[j]):
                raise _refuse(
                    f"As regiões {i + 1} e {j + 1} se sobrepõem: marque cada implante uma vez.", "regions_overlap"
                )
    return regions


def _check_count(count: int, field: str = FIELD) -> None:
    limit = settings.RAIOX_MAX_REGIONS
    if count > limit:
        raise _refuse(f"No máximo {limit} implantes marcados por radiografia.", "too_many_regions", field)


def region_of(child: Submission) -> Region:
    """The rectangle a film's region (child submission) covers, from its ``crop_box``."""
    box = child.crop_box or {}
    return Region(int(box.get("x", 0)), int(box.get("y", 0)), int(box.get("width", 0)), int(box.get("height", 0)), "")


def check_added_region(region: Region, existing: list[Submission], *, field: str = "box") -> int:
    """The region rules for one more region of a film that has ``existing`` ones (crop & re-match
    on the result page): at most ``RAIOX_MAX_REGIONS`` in all, no overlap with any of them, the
    same rules as a list sent at intake. Returns the new region's number (after the film's last).
    The caller holds the film's row lock, so two crops at once are checked one after the other."""
    _check_count(len(existing) + 1, field)
    numbers = []
    for n, child in enumerate(existing, start=1):
        number = (child.crop_box or {}).get("region", n)
        numbers.append(number if isinstance(number, int) else n)
        if region.overlaps(region_of(child)):
            raise _refuse(
                f"O recorte se sobrepõe à região {numbers[-1]}: marque cada implante uma vez.", "regions_overlap", field
            )
    return max(numbers, default=0) + 1


def stored_size(submission: Submission) -> tuple[int, int]:
    """The size of ``submission``'s picture as the worker decodes it, read from the stored file's
    header only (``kernel.imaging.inspect_image``): the web process never decodes a film's pixels,
    so a crop costs what reading its header costs, whatever the film declares."""
    if not submission.image:
        raise ApplicationError(
            "A imagem ainda está sendo processada; tente de novo em instantes.", code="not_ready", status=409
        )
    with default_storage.open(submission.image.name, "rb") as fh:
        data = fh.read(settings.RAIOX_MAX_UPLOAD_BYTES + 1)
    return inspect_image(data, field="box").oriented_size


def intake_from_region(
    parent: Submission, region: Region, number: int, *, width: int, height: int, image: Image.Image | None = None
) -> IntakeRecord:
    """``region`` of ``parent``'s X-ray (``width`` × ``height``) as an intake: the parent's dentist,
    patient and owner, the region's tooth (the parent's when the region names none).

    Without ``image`` (every web route) the record carries no pixels: the worker cuts the region
    from the stored film when it processes the child (``submissions.services.remote``). With it
    (the worker's own found regions, the film already decoded in hand) the piece is cut here."""
    image_bytes = None
    if image is not None:
        piece = image.crop((region.x, region.y, region.x + region.width, region.y + region.height))
        out = io.BytesIO()
        piece.save(out, format="PNG")
        image_bytes = out.getvalue()
    answers = {name: getattr(parent, name) for name in fields.ANSWERS}
    answers["tooth"] = region.tooth or parent.tooth
    return fields.intake_record(
        source=parent.source,
        answers=answers,
        image_bytes=image_bytes,
        original_filename=f"regiao-{number}.png",
        parent_id=parent.pk,
        owner_id=parent.owner_id,
        crop_box=region.box(number, width, height),
    )
