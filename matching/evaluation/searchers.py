"""Running the queries of a labelled set: ``DatabaseSearch`` (the running model through the real
pgvector search), ``MemorySearch`` (a second model's catalogue embedded here and searched exactly,
or the whole-film baseline) and ``run_queries``, which times each query into a ``QueryResult``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from implants.models import ReferenceImage
from matching.evaluation.datasets import LabelledItem
from matching.evaluation.summary import QueryResult
from matching.images import stored_image_load
from matching.search import ImplantHit, _fold, nearest_implants, nearest_implants_exact

K = 5


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
