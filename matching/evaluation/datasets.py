"""The labelled sets an evaluation runs over: a folder ``<implant>/*.png`` (or
``<manufacturer>/<implant>/``, optionally under a condition folder), the generated films of
``generate_catalog --films`` (``truth.json``), the staff-confirmed cases, and leave-one-out over
the reference images."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.utils.text import slugify

from implants.models import Implant, ReferenceImage
from kernel.storage_keys import SAFE_EXTENSIONS
from matching.images import stored_image_read


@dataclass
class LabelledItem:
    source: str
    truth_id: int
    load: Callable[[], bytes] | None = None  # image bytes (folder, confirmed case)
    reference_id: int | None = None  # leave-one-out: the reference image queried
    exclude_references: tuple[int, ...] = ()
    stored_embedding: tuple[str, list[float]] | None = None  # (model id, vector) when already known
    condition: str = ""
    truth_box: tuple[int, int, int, int] | None = None  # where the implant is on the film (truth.json)


def _implant_index() -> dict[str, int]:
    """Folder names that designate an implant: ``<manufacturer-slug>/<implant-slug>``, and
    ``<implant-slug>`` or ``<manufacturer-slug>-<implant-slug>`` when unambiguous."""
    index: dict[str, int] = {}
    ambiguous: set[str] = set()
    for implant in Implant.objects.select_related("manufacturer"):
        islug = slugify(implant.name)
        index[f"{implant.manufacturer.slug}/{islug}"] = implant.pk
        for key in (islug, slugify(f"{implant.manufacturer.name} {implant.name}")):
            if key in index and index[key] != implant.pk:
                ambiguous.add(key)
            index[key] = implant.pk
    for key in ambiguous:
        index.pop(key, None)
    return index


TRUTH_FILE = "truth.json"


def folder_items(folder: Path) -> tuple[list[LabelledItem], list[str]]:
    """A labelled folder: ``<implant>/*.png`` (or ``<manufacturer>/<implant>/``), optionally under a
    condition folder (``lower/<manufacturer>/<implant>/1.png``); or, where the folder holds the
    generator's ``truth.json`` (``manage.py generate_catalog --films``), one query per implant of
    every film, with where it lies on the film and its condition."""
    if (folder / TRUTH_FILE).is_file():
        return truth_items(folder)
    index = _implant_index()
    items: list[LabelledItem] = []
    unknown: set[str] = set()
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in SAFE_EXTENSIONS:
            continue
        label = path.parent.relative_to(folder).as_posix()
        condition = ""
        implant_id = index.get(label)
        if implant_id is None and "/" in label:
            condition, rest = label.split("/", 1)
            implant_id = index.get(rest)
        if implant_id is None:
            unknown.add(label)
            continue
        items.append(LabelledItem(str(path.relative_to(folder)), implant_id, load=path.read_bytes, condition=condition))
    return items, sorted(unknown)


def truth_items(folder: Path) -> tuple[list[LabelledItem], list[str]]:
    index = _implant_index()
    truth = json.loads((folder / TRUTH_FILE).read_text(encoding="utf-8"))
    items: list[LabelledItem] = []
    unknown: set[str] = set()
    for film in truth.get("films", []):
        path = folder / film["file"]
        for n, fixture in enumerate(film.get("fixtures", []), start=1):
            label = f"{slugify(fixture['manufacturer'])}/{slugify(fixture['implant'])}"
            implant_id = index.get(label)
            if implant_id is None:
                unknown.add(label)
                continue
            items.append(
                LabelledItem(
                    f"{film['file']}#{n}",
                    implant_id,
                    load=path.read_bytes,
                    condition=film.get("condition", ""),
                    truth_box=tuple(int(v) for v in fixture["box"]),
                )
            )
    return items, sorted(unknown)


def confirmed_items() -> list[LabelledItem]:
    from submissions.models import Submission

    items = []
    for sub in Submission.objects.filter(confirmed_implant__isnull=False).exclude(image="").order_by("pk"):

        def load(name: str = sub.image.name, storage=sub.image.storage) -> bytes:
            with storage.open(name, "rb") as fh:
                return fh.read()

        stored = (sub.embedding_model, [float(x) for x in sub.embedding]) if sub.embedding is not None else None
        items.append(
            LabelledItem(
                f"envio #{sub.pk}",
                sub.confirmed_implant_id,
                load=load,
                exclude_references=(sub.confirmed_reference_image_id,) if sub.confirmed_reference_image_id else (),
                stored_embedding=stored,
            )
        )
    return items


def leave_one_out_items(model_id: str) -> tuple[list[LabelledItem], int]:
    """Every reference image whose implant has another one to be found by; (items, left out)."""
    refs = list(
        ReferenceImage.objects.filter(embedding_model=model_id, embedding__isnull=False, implant__is_active=True)
        .order_by("pk")
        .values_list("pk", "implant_id", "embedding", "image")
    )
    per_implant = Counter(implant_id for _, implant_id, _, _ in refs)
    items, alone = [], 0
    for pk, implant_id, embedding, name in refs:
        if per_implant[implant_id] < 2:
            alone += 1
            continue

        def load(name: str = name) -> bytes:
            return stored_image_read(name)

        items.append(
            LabelledItem(
                f"referência #{pk}",
                implant_id,
                load=load,
                reference_id=pk,
                exclude_references=(pk,),
                stored_embedding=(model_id, [float(x) for x in embedding]),
            )
        )
    return items, alone
