"""How well the system identifies implants, measured the way a clinic would: the real search, the
running model, a labelled set (a folder ``<implant-slug>/*.png``, the staff-confirmed cases, or
leave-one-out over the reference images).

Per query we keep the true implant, the ranked candidates with their similarities and the time
taken; every figure of the report (top-k, per manufacturer, confusions, confidence labels, the
"no convincing match" cut-off, latency, calibration and suggested thresholds) is computed from
that list.

Two ways of telling the dentist how sure we are are measured side by side: the similarity labels
the result page used before issue 21 (``similarity_label``: fixed ``RAIOX_CONFIDENCE_*`` thresholds
on the raw similarity and its margin), and the calibrated probability (``matching.calibration``) of
the model's active calibration, the one the page shows now (``calibrated``). ``--fit-calibration``
fits a new one on the set (``observations``).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils.text import slugify

from implants.models import Implant, ReferenceImage
from kernel.storage_keys import SAFE_EXTENSIONS
from matching import calibration as calibrating
from matching.images import stored_image_load, stored_image_read
from matching.models import EvaluationReport
from matching.search import ImplantHit, _fold, nearest_implants, nearest_implants_exact

K = 5
HIGH_PRECISION_TARGET = 0.95
MEDIUM_PRECISION_TARGET = 0.80
MARGINS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08)


@dataclass
class QueryResult:
    source: str  # file path, "referência #12", "envio #7" (never patient data)
    truth_id: int
    hits: list[tuple[int, float]]  # (implant id, similarity), best first
    embed_ms: float
    search_ms: float
    condition: str = ""  # the generated film's condition (lower, upper, crown, panoramic, phone)
    found: bool = True  # False: the finder found no fixture where the truth has one (counted wrong)

    @property
    def rank(self) -> int | None:
        for i, (implant_id, _) in enumerate(self.hits, 1):
            if implant_id == self.truth_id:
                return i
        return None

    @property
    def top1(self) -> tuple[int, float] | None:
        return self.hits[0] if self.hits else None


# --- labelled sets ----------------------------------------------------------------------------------


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
    import json

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


# --- running the queries ----------------------------------------------------------------------------


def film_query_views(embedder, item: LabelledItem) -> list | None:
    """The canonical view(s) the worker would embed for ``item``'s implant, by the worker's own rule
    (``canonical.answer``): a film's one fixture; for a film of several, the region cut around the
    fixture where the truth says the implant is (``item.truth_box``; else the best scored), read
    again as the worker reads each region. None where the truth is and no fixture was found there
    (a miss, counted wrong); a picture with no fixture at all is framed whole (see below)."""
    from matching.canonical import answer, box_iou, fixture_views
    from matching.fixtures import find_fixtures
    from submissions.fixtures import region_box

    image = embedder.load_image(item.load())  # type: ignore[misc]
    decided = answer(image, find_fixtures(image), region=False)
    if item.truth_box is not None:
        scored = [(box_iou(f.box, item.truth_box), f) for f in decided.fixtures]
        scored = [(iou, f) for iou, f in scored if iou >= 0.5]
        if not scored:
            return None
        fixture = max(scored, key=lambda pair: pair[0])[1]
    elif decided.plan == "none":
        # The worker answers "nothing found" here; evaluation frames the whole picture (both
        # orientations) so that matching is still measured on pictures the finder reads nothing in.
        return fixture_views(image, None)
    elif decided.plan == "one":
        return decided.views
    else:
        fixture = decided.fixtures[0]
    if decided.plan == "one":
        return decided.views
    x, y, w, h = region_box(fixture.box, *image.size)
    cut = image.crop((x, y, x + w, y + h))
    return answer(cut, find_fixtures(cut), region=True).views


class DatabaseSearch:
    """The running model: the queries go through the real pgvector search."""

    def __init__(self, embedder):
        self.embedder = embedder
        self.model_id = embedder.model_id
        self.untrained = embedder.untrained

    def query_vectors(self, item: LabelledItem) -> list[list[float]]:
        """One vector per view to search (two for an uncertain apex: the better match is kept);
        none when the finder missed the implant."""
        if item.stored_embedding is not None and item.stored_embedding[0] == self.model_id:
            return [item.stored_embedding[1]]
        if item.reference_id is not None:  # a catalogue picture: framed as the catalogue is
            return self.embedder.embed_images([self.embedder.load_image(item.load())])  # type: ignore[misc]
        views = film_query_views(self.embedder, item)
        return self.embedder.embed_images(views) if views else []

    def search(self, vector: list[float], item: LabelledItem) -> list[ImplantHit]:
        if item.exclude_references:
            return nearest_implants_exact(
                vector, model_id=self.model_id, k=K, exclude_references=item.exclude_references
            )
        return nearest_implants(vector, model_id=self.model_id, k=K)


class MemorySearch:
    """A second model for --compare: the database holds one embedding per reference image (the
    running model's), so the other model's catalogue is embedded here and searched exactly.

    ``whole_film``: the baseline of ``--baseline-whole-film`` — references and queries embedded as
    whole pictures, without the finder and the canonical view (how the system matched before)."""

    def __init__(
        self,
        embedder,
        batch_size: int = 16,
        progress: Callable[[int], object] | None = None,
        *,
        whole_film: bool = False,
    ):
        self.embedder = embedder
        self.whole_film = whole_film
        self.model_id = f"{embedder.spec.weights_id} (filme inteiro)" if whole_film else embedder.model_id
        self.untrained = embedder.untrained
        embed = embedder.embed_uncanonical_baseline if whole_film else embedder.embed_images

        refs = list(
            ReferenceImage.objects.filter(implant__is_active=True)
            .order_by("pk")
            .values_list("pk", "implant_id", "image")
        )
        vectors: list[list[float]] = []
        for start in range(0, len(refs), batch_size):
            batch = refs[start : start + batch_size]
            vectors += embed([stored_image_load(embedder, name) for _, _, name in batch])
            if progress:
                progress(len(batch))
        self.ref_ids = np.array([pk for pk, _, _ in refs])
        self.implant_ids = np.array([implant_id for _, implant_id, _ in refs])
        self.matrix = np.array(vectors, dtype=np.float32).reshape(len(refs), -1)
        self.by_ref = {pk: i for i, pk in enumerate(self.ref_ids)}

    def query_vectors(self, item: LabelledItem) -> list[list[float]]:
        if item.reference_id is not None and item.reference_id in self.by_ref:
            return [self.matrix[self.by_ref[item.reference_id]].tolist()]
        if self.whole_film:
            return self.embedder.embed_uncanonical_baseline([self.embedder.load_image(item.load())])  # type: ignore[misc]
        views = film_query_views(self.embedder, item)
        return self.embedder.embed_images(views) if views else []

    def search(self, vector: list[float], item: LabelledItem) -> list[ImplantHit]:
        distances = 1.0 - self.matrix @ np.asarray(vector, dtype=np.float32)
        order = np.argsort(distances, kind="stable")
        excluded = set(item.exclude_references)
        rows = (
            (int(self.ref_ids[i]), int(self.implant_ids[i]), float(distances[i]))
            for i in order
            if int(self.ref_ids[i]) not in excluded
        )
        return _fold(rows, K)


def run_queries(searcher, items: Sequence[LabelledItem]) -> Iterator[QueryResult]:
    for item in items:
        started = time.perf_counter()
        vectors = searcher.query_vectors(item)
        embedded = time.perf_counter()
        # Two views (uncertain apex): the one whose best candidate is closer wins, as in the worker.
        searched = [searcher.search(vector, item) for vector in vectors]
        hits = max(searched, key=lambda h: h[0].similarity if h else -1.0) if searched else []
        done = time.perf_counter()
        yield QueryResult(
            item.source,
            item.truth_id,
            [(h.implant_id, round(h.similarity, 5)) for h in hits],
            (embedded - started) * 1000,
            (done - embedded) * 1000,
            condition=item.condition,
            found=bool(vectors),
        )


# --- figures ----------------------------------------------------------------------------------------


def _rate(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def similarity_label(similarity: float, *neighbours: float | None) -> str:
    """The label the result page gave before issue 21 (kept as the baseline the calibration is
    measured against): "alta" from a similarity and a lead over the closest neighbour above the
    fixed ``RAIOX_CONFIDENCE_HIGH_*`` thresholds, "media" above the ``MEDIUM_*`` ones."""
    gaps = [abs(similarity - n) for n in neighbours if n is not None]
    margin = min(gaps) if gaps else 1.0
    if similarity >= settings.RAIOX_CONFIDENCE_HIGH_SIMILARITY and margin >= settings.RAIOX_CONFIDENCE_HIGH_MARGIN:
        return "alta"
    if similarity >= settings.RAIOX_CONFIDENCE_MEDIUM_SIMILARITY and margin >= settings.RAIOX_CONFIDENCE_MEDIUM_MARGIN:
        return "media"
    return "baixa"


def _label(result: QueryResult) -> str:
    if not result.hits:
        return "baixa"
    following = result.hits[1][1] if len(result.hits) > 1 else None
    return similarity_label(result.hits[0][1], None, following)


def observations(results: Sequence[QueryResult]) -> list[calibrating.Observation]:
    """The queries as the calibration sees them: the candidates' similarities and where the right
    implant is among them (a finder miss has no candidates: no answer to calibrate)."""
    return [
        calibrating.Observation(tuple(s for _, s in r.hits), (r.rank - 1) if r.rank is not None else None)
        for r in results
    ]


def film_of(result: QueryResult) -> str:
    """The film a query came from (two implants of one panoramic are one film)."""
    return result.source.split("#", 1)[0]


def similarity_figures(results: Sequence[QueryResult]) -> dict:
    """Today's (pre-calibration) reading: the raw similarity taken as the probability, its ECE,
    and the share right per similarity label."""
    scored = [(r.hits[0][1], r.rank == 1) for r in results if r.hits]
    return {
        "ece": calibrating.ece(scored),
        "bands": calibrating.band_figures([(_label(r), r.rank == 1) for r in results if r.hits]),
    }


def calibrated(results: Sequence[QueryResult], calibration) -> dict | None:
    """The figures of a stored ``matching.Calibration`` on these results (None: none given)."""
    if calibration is None:
        return None
    params = calibrating.params_from(calibration.method, calibration.params)
    bands = calibrating.Bands.from_json(calibration.bands)
    figures = calibrating.assess(observations(results), params, bands)
    per_condition = {}
    for condition in sorted({r.condition for r in results if r.condition}):
        rows = [r for r in results if r.condition == condition]
        per_condition[condition] = calibrating.assess(observations(rows), params, bands)
    return {
        "calibration_id": calibration.pk,
        "fitted_on": calibration.dataset,
        "method": calibration.method,
        "params": calibration.params,
        "cutoffs": calibration.bands,
        **figures,
        "per_condition": per_condition,
    }


def _margin(result: QueryResult) -> float:
    return result.hits[0][1] - result.hits[1][1] if len(result.hits) > 1 else 1.0


def hubness(first_answers: Sequence[int], catalogue_size: int) -> dict:
    """How unevenly the first answers spread over the catalogue: the share taken by the most
    frequent implant (1/n when even) and the skewness of the first-answer counts N1 over every
    implant (Radovanović et al.'s measure; near 0 when even, large when a few "hubs" take most)."""
    if not first_answers or catalogue_size < 2:
        return {"top_share": 0.0, "skewness": 0.0, "implants_never_first": 0}
    counts = Counter(first_answers)
    n1 = np.array([counts.get(pk, 0) for pk in counts] + [0] * max(0, catalogue_size - len(counts)), dtype=float)
    spread = n1.std()
    skew = float(((n1 - n1.mean()) ** 3).mean() / spread**3) if spread > 0 else 0.0
    return {
        "top_share": _rate(max(counts.values()), len(first_answers)),
        "skewness": round(skew, 2),
        "implants_never_first": int((n1 == 0).sum()),
    }


def suggest_thresholds(results: Sequence[QueryResult]) -> dict:
    """Cut-offs read from the measured calibration (top-1 similarity and margin vs. correctness).

    - ``RAIOX_MIN_SIMILARITY``: the similarity that best separates right from wrong first
      candidates (Youden's J: share of right answers kept minus share of wrong ones kept);
    - ``RAIOX_CONFIDENCE_HIGH_*`` / ``MEDIUM_*``: the (similarity, margin) pair that labels the most
      answers while keeping their precision at 95 % / 80 %.
    """
    scored = [(r.hits[0][1], _margin(r), r.rank == 1) for r in results if r.hits]
    out: dict = {"basis": len(scored)}
    right = [s for s, _, ok in scored if ok]
    wrong = [s for s, _, ok in scored if not ok]
    if not right or not wrong:
        out["min_similarity"] = None
        out["note"] = "todas as respostas certas ou todas erradas: sem base para um corte"
    else:
        best = max(
            sorted({s for s, _, _ in scored}),
            key=lambda t: sum(s >= t for s in right) / len(right) - sum(s >= t for s in wrong) / len(wrong),
        )
        out["min_similarity"] = round(best, 3)
    candidates = sorted({round(s, 3) for s, _, _ in scored})
    for name, target in (("high", HIGH_PRECISION_TARGET), ("medium", MEDIUM_PRECISION_TARGET)):
        best_choice = None
        for t in candidates:
            for m in MARGINS:
                kept = [ok for s, mg, ok in scored if s >= t and mg >= m]
                if len(kept) < 3:
                    continue
                precision = sum(kept) / len(kept)
                if precision >= target and (best_choice is None or len(kept) > best_choice[2]):
                    best_choice = (t, m, len(kept), precision)
        if best_choice is None:
            out[name] = None
        else:
            t, m, n, precision = best_choice
            out[name] = {
                "similarity": t,
                "margin": m,
                "coverage": _rate(n, len(scored)),
                "precision": round(precision, 4),
            }
    return out


def summarise(
    results: list[QueryResult], *, model_id: str, untrained: bool, dataset: str, active_calibration=None
) -> dict:
    """Every figure of a run. ``active_calibration``: a stored ``matching.Calibration`` of this model (the
    active one) whose probability and bands are measured on these results beside the similarity
    labels."""
    implants = {
        i.pk: (i.manufacturer.name, i.name) for i in Implant.objects.select_related("manufacturer").order_by("pk")
    }

    def name(pk: int) -> str:
        manufacturer, implant = implants.get(pk, ("?", f"#{pk}"))
        return f"{manufacturer} {implant}"

    n = len(results)
    ranks = [r.rank for r in results]
    topk = {f"top{k}": _rate(sum(1 for x in ranks if x is not None and x <= k), n) for k in (1, 3, 5)}
    per_manufacturer: dict[str, dict] = {}
    grouped: dict[str, list[QueryResult]] = defaultdict(list)
    for r in results:
        grouped[implants.get(r.truth_id, ("?", ""))[0]].append(r)
    for manufacturer, rows in sorted(grouped.items()):
        per_manufacturer[manufacturer] = {
            "queries": len(rows),
            "top1": _rate(sum(r.rank == 1 for r in rows), len(rows)),
            "top5": _rate(sum(r.rank is not None for r in rows), len(rows)),
        }
    confusions = Counter(
        (r.truth_id, r.top1[0]) for r in results if r.top1 is not None and r.top1[0] != r.truth_id
    ).most_common(10)
    labels: dict[str, dict] = {}
    for level in ("alta", "media", "baixa"):
        rows = [r for r in results if _label(r) == level]
        labels[level] = {"queries": len(rows), "right": _rate(sum(r.rank == 1 for r in rows), len(rows))}
    cut = settings.RAIOX_MIN_SIMILARITY
    hidden = [r for r in results if not r.hits or r.hits[0][1] < cut]
    calibration = []
    sims = [r.hits[0][1] for r in results if r.hits]
    if sims:
        low, high = min(sims), max(sims)
        width = (high - low) / 10 or 1.0
        for b in range(10):
            lo, hi = low + b * width, low + (b + 1) * width
            rows = [r for r in results if r.hits and (lo <= r.hits[0][1] < hi or (b == 9 and r.hits[0][1] == hi))]
            calibration.append(
                {
                    "from": round(lo, 4),
                    "to": round(hi, 4),
                    "queries": len(rows),
                    "right": _rate(sum(r.rank == 1 for r in rows), len(rows)),
                }
            )
    embed = [r.embed_ms for r in results]
    search = [r.search_ms for r in results]
    per_condition = {}
    for condition in sorted({r.condition for r in results if r.condition}):
        rows = [r for r in results if r.condition == condition]
        per_condition[condition] = {
            "queries": len(rows),
            "fixture_found": _rate(sum(r.found for r in rows), len(rows)),
            "top1": _rate(sum(r.rank == 1 for r in rows), len(rows)),
            "top3": _rate(sum(r.rank is not None and r.rank <= 3 for r in rows), len(rows)),
            "hubness": hubness([r.top1[0] for r in rows if r.top1 is not None], len(implants)),
        }
    return {
        "model_id": model_id,
        "untrained": untrained,
        "dataset": dataset,
        "queries": n,
        "implants": len({r.truth_id for r in results}),
        **topk,
        "per_manufacturer": per_manufacturer,
        "per_condition": per_condition,
        "hubness": hubness([r.top1[0] for r in results if r.top1 is not None], len(implants)),
        "confused_pairs": [{"truth": name(a), "predicted": name(b), "count": c} for (a, b), c in confusions],
        "confidence_labels": labels,
        "similarity_as_probability": similarity_figures(results),
        "calibrated": calibrated(results, active_calibration),
        "no_convincing_match": {
            "min_similarity": cut,
            "queries": len(hidden),
            "share": _rate(len(hidden), n),
            "hid_right_top1": sum(r.rank == 1 for r in hidden),
            "hid_right_in_top5": sum(r.rank is not None for r in hidden),
        },
        "latency_ms": {
            "embed_p50": _percentile(embed, 50),
            "embed_p95": _percentile(embed, 95),
            "search_p50": _percentile(search, 50),
            "search_p95": _percentile(search, 95),
            "total_p50": _percentile([a + b for a, b in zip(embed, search, strict=True)], 50),
        },
        "calibration": calibration,
        "similarity_right": [round(r.hits[0][1], 4) for r in results if r.hits and r.rank == 1],
        "similarity_wrong": [round(r.hits[0][1], 4) for r in results if r.hits and r.rank != 1],
        "suggested": suggest_thresholds(results),
        "current": {
            "RAIOX_MIN_SIMILARITY": cut,
            "RAIOX_CONFIDENCE_HIGH_SIMILARITY": settings.RAIOX_CONFIDENCE_HIGH_SIMILARITY,
            "RAIOX_CONFIDENCE_HIGH_MARGIN": settings.RAIOX_CONFIDENCE_HIGH_MARGIN,
            "RAIOX_CONFIDENCE_MEDIUM_SIMILARITY": settings.RAIOX_CONFIDENCE_MEDIUM_SIMILARITY,
            "RAIOX_CONFIDENCE_MEDIUM_MARGIN": settings.RAIOX_CONFIDENCE_MEDIUM_MARGIN,
        },
        "results": [asdict(r) | {"rank": r.rank} for r in results],
    }


@dataclass
class Evaluation:
    summaries: list[dict] = field(default_factory=list)  # the running model first, then --compare

    @property
    def untrained(self) -> bool:
        return any(s["untrained"] for s in self.summaries)


def evaluation_report_create(*, summaries: list[dict], html: str) -> EvaluationReport:
    """Store a run so the admin shows it (the write of this module; per-query rows stay in report.json)."""
    main = summaries[0]
    stored = [{k: v for k, v in s.items() if k != "results"} for s in summaries]
    with transaction.atomic():
        report = EvaluationReport(
            model_id=main["model_id"][:200],
            untrained=any(s["untrained"] for s in summaries),
            dataset=main["dataset"][:200],
            queries=main["queries"],
            top1=main["top1"],
            top5=main["top5"],
            summary={"models": stored},
            html=html,
        )
        report.full_clean()
        report.save()
    return report
