"""Every write to the catalogue. Views, admin, commands and tasks all call these."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from implants.models import Implant, Manufacturer, ReferenceImage, ReferenceSource
from kernel.files import delete_files_on_commit, stored_file
from kernel.imaging import ValidatedImage, decode_image, inspect_image
from kernel.queue import enqueue_on_commit
from kernel.storage_keys import reference_image_key
from kernel.text import plain

# Queued by dotted path so that implants never imports matching (dependencies run one way).
EMBED_REFERENCE_TASK = "matching.tasks.embed_reference_image"


EMBED_REFERENCE_BATCH_TASK = "matching.batch.embed_reference_images"


def _queue_embedding(reference_image_id: int) -> None:
    enqueue_on_commit(EMBED_REFERENCE_TASK, reference_image_id, group="embed")


def reference_images_queue_embedding(*, reference_ids: list[int], batch_size: int = 32) -> int:
    """Queue the embeddings of many reference images, one task per batch: the worker then runs one
    forward pass per batch instead of one per image (bulk imports). Returns the number of tasks."""
    ids = list(reference_ids)
    batches = [ids[start : start + batch_size] for start in range(0, len(ids), max(1, batch_size))]
    for batch in batches:
        enqueue_on_commit(EMBED_REFERENCE_BATCH_TASK, batch, group="embed")
    return len(batches)


@transaction.atomic
def implant_link_legacy(*, implant: Implant, legacy_id: int, legacy_type: str) -> Implant:
    """Remember the old system's row id on an implant that already existed here (same name)."""
    implant.legacy_id = legacy_id
    implant.legacy_type = legacy_type
    implant.full_clean()
    implant.save(update_fields=["legacy_id", "legacy_type", "updated_at"])
    return implant


@transaction.atomic
def manufacturer_get_or_create(*, name: str, country: str = "", website: str = "") -> tuple[Manufacturer, bool]:
    name = plain(name)
    existing = Manufacturer.objects.filter(name=name).first()
    if existing is not None:
        return existing, False
    manufacturer = Manufacturer(name=name, slug=slugify(name), country=country, website=website)
    manufacturer.full_clean()
    manufacturer.save()
    return manufacturer, True


@transaction.atomic
def implant_get_or_create(*, manufacturer: Manufacturer, name: str, **features: object) -> tuple[Implant, bool]:
    name = plain(name)
    existing = Implant.objects.filter(manufacturer=manufacturer, name=name).first()
    if existing is not None:
        return existing, False
    for key in ("diameters_mm", "lengths_mm"):
        if key in features:
            features[key] = [Decimal(str(v)) for v in features[key]]  # type: ignore[union-attr]
    implant = Implant(manufacturer=manufacturer, name=name, **features)
    implant.full_clean()
    implant.save()
    return implant, True


@transaction.atomic
def implant_set_active(*, implant: Implant, is_active: bool) -> Implant:
    """Deactivating removes the implant from results at once: the search filters on is_active."""
    implant.is_active = is_active
    implant.full_clean()
    implant.save(update_fields=["is_active", "updated_at"])
    return implant


def _pixels_only(image_bytes: bytes) -> ValidatedImage:
    """Reference images are stored as the pixels only, re-encoded as PNG: no EXIF (camera, GPS,
    dates), no ICC or text chunks, no DICOM tags (patient name, birth date, institution). The pixel
    hash is the one a submission gets, so that an X-ray confirmed as a reference image, or a
    catalogue image sent as a query, is recognised as the same picture and its embedding reused.
    Refuses a file that is not an image (``InvalidImage``) before anything is stored."""
    return decode_image(image_bytes, field="image")


def reference_image_create(
    *,
    implant: Implant,
    image_bytes: bytes,
    filename: str,
    source: str = ReferenceSource.CATALOG,
    queue: bool = True,
) -> ReferenceImage:
    """Store a reference image (pixels only) and queue its embedding once the row is committed
    (``queue=False``: the caller queues many at once with ``reference_images_queue_embedding``).

    ``filename`` is what the sender called the file; the stored name follows the content (PNG).
    """
    return reference_image_create_decoded(implant=implant, image=_pixels_only(image_bytes), source=source, queue=queue)


def reference_image_create_decoded(
    *, implant: Implant, image: ValidatedImage, source: str = ReferenceSource.CATALOG, queue: bool = True
) -> ReferenceImage:
    """``reference_image_create`` for an image the caller already decoded (``decode_image``): the
    bulk imports decode each file once, to check it, and store that result."""
    with stored_file(reference_image_key(None, image.filename), image.content) as name:
        reference = ReferenceImage(implant=implant, source=source, content_hash=image.content_hash)
        reference.image.name = name
        reference.full_clean()
        reference.save()
        if queue:
            _queue_embedding(reference.pk)
    return reference


def reference_image_replace_file(*, reference: ReferenceImage, image_bytes: bytes, filename: str) -> ReferenceImage:
    """A new file makes the old embedding wrong: clear it and queue a new one. The old file is
    deleted once the change is committed."""
    old_name = reference.image.name
    image = _pixels_only(image_bytes)
    with stored_file(reference_image_key(None, image.filename), image.content) as name:
        reference.image.name = name
        reference.content_hash = image.content_hash
        reference.embedding = None
        reference.embedding_model = ""
        reference.embedded_at = None
        reference.full_clean()
        reference.save()
        _queue_embedding(reference.pk)
        delete_files_on_commit([old_name])
    return reference


@transaction.atomic
def reference_image_set_embedding(*, reference_id: int, embedding: list[float], model_id: str) -> ReferenceImage:
    reference = ReferenceImage.objects.select_for_update().get(pk=reference_id)
    reference.embedding = embedding
    reference.embedding_model = model_id
    reference.embedded_at = timezone.now()
    reference.save(update_fields=["embedding", "embedding_model", "embedded_at", "updated_at"])
    return reference


@transaction.atomic
def manufacturer_save(*, manufacturer: Manufacturer) -> Manufacturer:
    """Create or update a manufacturer from an already-filled instance (admin form, API)."""
    manufacturer.name = plain(manufacturer.name or "")
    if not manufacturer.slug:
        manufacturer.slug = slugify(manufacturer.name)
    manufacturer.full_clean()
    manufacturer.save()
    return manufacturer


@transaction.atomic
def implant_save(*, implant: Implant) -> Implant:
    """Create or update an implant from an already-filled instance (admin form, API). Its
    reference images keep their embeddings: they depend on the pictures, not on these fields."""
    implant.name = plain(implant.name or "")
    implant.full_clean()
    implant.save()
    return implant


def reference_image_delete(*, reference: ReferenceImage) -> None:
    """Delete a reference image and, once the deletion is committed, its file."""
    name = reference.image.name
    with transaction.atomic():
        reference.delete()
        delete_files_on_commit([name])


@transaction.atomic
def reference_image_move(*, reference: ReferenceImage) -> ReferenceImage:
    """Save a reference image moved to another implant; the picture, hence its embedding, is kept."""
    reference.full_clean()
    reference.save(update_fields=["implant", "updated_at"])
    return reference


def reference_images_create_many(
    *, implant: Implant, files: list[tuple[bytes, str]], source: str = ReferenceSource.CATALOG
) -> list[ReferenceImage]:
    """Several reference images for one implant (admin bulk upload): every file is checked before
    any is stored, then all are stored in one transaction (a failure leaves none, files included:
    ``kernel.files``) and their embeddings queued as one batch."""
    for data, _name in files:
        inspect_image(data, field="image")  # refuses a file that is not an image before any is stored
    created: list[ReferenceImage] = []
    with transaction.atomic():
        for data, name in files:
            created.append(
                reference_image_create(implant=implant, image_bytes=data, filename=name, source=source, queue=False)
            )
        reference_images_queue_embedding(reference_ids=[r.pk for r in created])
    return created
