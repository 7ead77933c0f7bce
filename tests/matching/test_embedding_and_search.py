"""The embedder (real open_clip, untrained weights allowed in tests) and the pgvector search."""

from __future__ import annotations

import io
from collections import defaultdict

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from implants.models import Connection, Implant, ReferenceImage
from implants.services import implant_set_active, reference_image_set_embedding
from matching.embedder import get_embedder
from matching.search import forget_images_per_implant, nearest_implants
from testkit.images import xray_png

pytestmark = pytest.mark.django_db


def exact_top(query: np.ndarray, model_id: str, k: int, implant_ids: set[int] | None = None) -> list[tuple[int, float]]:
    """Exact cosine scan in numpy over the stored vectors, folded to one row per implant."""
    best: dict[int, float] = defaultdict(lambda: -2.0)
    rows = ReferenceImage.objects.filter(embedding_model=model_id, implant__is_active=True, embedding__isnull=False)
    for implant_id, embedding in rows.values_list("implant_id", "embedding"):
        if implant_ids is not None and implant_id not in implant_ids:
            continue
        v = np.asarray(embedding, dtype=np.float64)
        cos = float(query @ v / (np.linalg.norm(query) * np.linalg.norm(v)))
        best[implant_id] = max(best[implant_id], cos)
    ranked = sorted(best.items(), key=lambda item: -item[1])[:k]
    return [(implant_id, (1 + cos) / 2) for implant_id, cos in ranked]


def test_embeddings_are_normalised_and_deterministic():
    embedder = get_embedder()
    first = np.asarray(embedder.embed_bytes(xray_png(1)))
    again = np.asarray(embedder.embed_bytes(xray_png(1)))
    other = np.asarray(embedder.embed_bytes(xray_png(2)))
    assert first.shape == (512,)
    assert abs(np.linalg.norm(first) - 1.0) < 1e-5
    assert abs(np.linalg.norm(other) - 1.0) < 1e-5
    np.testing.assert_allclose(first, again, atol=1e-6)
    assert not np.allclose(first, other, atol=1e-4)
    # A batch gives the same vectors as one image at a time.
    batch = embedder.embed_images([embedder.load_image(xray_png(1)), embedder.load_image(xray_png(2))])
    np.testing.assert_allclose(batch[0], first, atol=1e-5)
    np.testing.assert_allclose(batch[1], other, atol=1e-5)
    assert "untrained" in embedder.model_id and embedder.untrained


def test_search_equals_exact_cosine_scan(embedded_catalog):
    embedder = get_embedder()
    for seed in (3, 4, 5):
        query = embedder.embed_bytes(xray_png(seed))
        hits = nearest_implants(query, model_id=embedder.model_id, k=5)
        expected = exact_top(np.asarray(query), embedder.model_id, 5)
        assert [h.implant_id for h in hits] == [implant_id for implant_id, _ in expected]
        for hit, (_, similarity) in zip(hits, expected, strict=True):
            assert hit.similarity == pytest.approx(similarity, abs=1e-5)


def test_a_reference_image_finds_its_own_implant_first(embedded_catalog):
    embedder = get_embedder()
    reference = ReferenceImage.objects.select_related("implant").order_by("?").first()
    with reference.image.open("rb") as fh:
        query = embedder.embed_bytes(fh.read())
    hits = nearest_implants(query, model_id=embedder.model_id)
    assert hits[0].implant_id == reference.implant_id
    assert hits[0].reference_image_id == reference.pk
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-5)


def test_folding_gives_one_row_per_implant_with_its_best_image(embedded_catalog):
    embedder = get_embedder()
    implant = Implant.objects.first()
    # Give one implant several reference vectors: a near copy of the query and far ones.
    query = np.asarray(embedder.embed_bytes(xray_png(7)))
    for reference in ReferenceImage.objects.filter(implant__in=Implant.objects.all()[:5]):
        ReferenceImage.objects.create(
            implant=reference.implant,
            image=reference.image.name,
            embedding=reference.embedding,
            embedding_model=embedder.model_id,
        )
    near = ReferenceImage.objects.create(
        implant=implant,
        image="referencia/near.png",
        embedding=list(query * 0.999 + 0.001),
        embedding_model=embedder.model_id,
    )
    hits = nearest_implants(query.tolist(), model_id=embedder.model_id, k=Implant.objects.count())
    ids = [h.implant_id for h in hits]
    assert len(ids) == len(set(ids)) == Implant.objects.count()
    assert hits[0].implant_id == implant.pk and hits[0].reference_image_id == near.pk
    assert [h.similarity for h in hits] == sorted((h.similarity for h in hits), reverse=True)


def test_embeddings_of_another_model_are_never_returned(embedded_catalog):
    embedder = get_embedder()
    query = embedder.embed_bytes(xray_png(8))
    stranger = Implant.objects.last()
    ReferenceImage.objects.filter(implant=stranger).delete()
    # An identical vector, but computed by another model: must not be compared.
    reference_image_set_embedding(
        reference_id=ReferenceImage.objects.create(implant=stranger, image="referencia/x.png").pk,
        embedding=query,
        model_id="ViT-L-14/some-other-weights",
    )
    hits = nearest_implants(query, model_id=embedder.model_id, k=Implant.objects.count())
    assert stranger.pk not in [h.implant_id for h in hits]
    assert nearest_implants(query, model_id="ViT-L-14/some-other-weights", k=3)[0].implant_id == stranger.pk


def test_inactive_implants_are_excluded(embedded_catalog):
    embedder = get_embedder()
    reference = ReferenceImage.objects.select_related("implant").first()
    with reference.image.open("rb") as fh:
        query = embedder.embed_bytes(fh.read())
    assert nearest_implants(query, model_id=embedder.model_id)[0].implant_id == reference.implant_id
    implant_set_active(implant=reference.implant, is_active=False)
    hits = nearest_implants(query, model_id=embedder.model_id, k=Implant.objects.count())
    assert reference.implant_id not in [h.implant_id for h in hits]
    assert len(hits) == Implant.objects.filter(is_active=True).count()


def test_filters_and_exclusions_still_return_k_rows_when_the_index_is_crowded(catalog):
    """pgvector 0.6 filters after the HNSW scan: thousands of near vectors of other implants would
    leave a filtered query with nothing unless the search falls back to an exact scan."""
    model_id = "test/crowded"
    rng = np.random.default_rng(0)
    query = rng.normal(size=512)
    query /= np.linalg.norm(query)
    wanted = list(Implant.objects.filter(connection=Connection.MORSE_TAPER)[:5])
    crowd = list(Implant.objects.exclude(connection=Connection.MORSE_TAPER))
    rows = []
    for i in range(3000):  # near the query, wrong connection
        v = query + rng.normal(scale=0.05, size=512)
        rows.append(
            ReferenceImage(
                implant=crowd[i % len(crowd)], image="referencia/c.png", embedding=v.tolist(), embedding_model=model_id
            )
        )
    for implant in wanted:  # far from the query, the filter's only answers
        v = rng.normal(size=512)
        rows.append(
            ReferenceImage(implant=implant, image="referencia/w.png", embedding=v.tolist(), embedding_model=model_id)
        )
    ReferenceImage.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE implants_referenceimage")
    hits = nearest_implants(
        query.tolist(),
        model_id=model_id,
        k=3,
        implant_filter={"connection": Connection.MORSE_TAPER},
        exclude_implants=[wanted[0].pk],
    )
    expected = exact_top(query, model_id, 3, implant_ids={i.pk for i in wanted[1:]})
    assert [h.implant_id for h in hits] == [implant_id for implant_id, _ in expected]
    assert len(hits) == 3


def test_a_crowded_implant_does_not_hide_the_others(catalog):
    """Confirmed cases pile up on popular implants: one implant with far more reference images than
    the default candidate list, all nearer than any other implant. The search still returns the
    exact top 3: the short first scan holds only the crowded implant, so a second index scan sized
    from the most crowded implant answers (never the exact scan of the whole catalogue)."""
    model_id = "test/popular"
    rng = np.random.default_rng(1)
    query = rng.normal(size=512)
    query /= np.linalg.norm(query)
    popular, *others = list(Implant.objects.all()[:6])
    rows = [
        ReferenceImage(
            implant=popular,
            image="referencia/p.png",
            embedding=(query + rng.normal(scale=0.02 / np.sqrt(512), size=512)).tolist(),
            embedding_model=model_id,
        )
        for _ in range(400)
    ]
    for i, implant in enumerate(others):
        for _ in range(3):
            v = query + rng.normal(scale=(0.5 + 0.1 * i) / np.sqrt(512), size=512)
            rows.append(
                ReferenceImage(
                    implant=implant, image="referencia/o.png", embedding=v.tolist(), embedding_model=model_id
                )
            )
    ReferenceImage.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE implants_referenceimage")
    forget_images_per_implant()
    with CaptureQueriesContext(connection) as queries:
        hits = nearest_implants(query.tolist(), model_id=model_id, k=3)
    expected = exact_top(query, model_id, 3)
    assert [h.implant_id for h in hits] == [implant_id for implant_id, _ in expected]
    assert hits[0].implant_id == popular.pk
    searches = [q["sql"] for q in queries.captured_queries if "<=>" in q["sql"]]
    assert len(searches) == 2 and all("hnsw.iterative_scan" in sql for sql in searches)


def test_fetch_model_fails_cleanly_offline(monkeypatch, settings, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings.RAIOX_CLIP_CACHE_DIR = tmp_path / "models"
    with pytest.raises(CommandError) as excinfo:
        call_command("fetch_model", stdout=io.StringIO())
    message = str(excinfo.value)
    assert "RAIOX_CLIP_PRETRAINED" in message and "fetch_model" in message
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_without_weights_the_error_names_the_setting(settings, tmp_path):
    from matching.embedder import WeightsUnavailable, resolve_spec

    settings.RAIOX_ALLOW_UNTRAINED_MODEL = False
    settings.RAIOX_CLIP_CACHE_DIR = tmp_path / "empty"
    with pytest.raises(WeightsUnavailable) as excinfo:
        resolve_spec()
    assert "RAIOX_CLIP_PRETRAINED" in str(excinfo.value) and "RAIOX_ALLOW_UNTRAINED_MODEL" in str(excinfo.value)


def test_int8_quantized_embedder_stays_close_to_fp32(settings):
    """RAIOX_CLIP_QUANTIZE=int8: the linear layers become int8 and the vectors stay near fp32's
    (bench/embedding.py measures the agreement on the catalogue; 0.99 is the bar for a default)."""
    import torch

    from matching.embedder import Embedder, pick_device, resolve_spec

    fp32 = get_embedder()  # the process's fp32 embedder (built before the setting changes)
    assert fp32.quantize == ""
    settings.RAIOX_CLIP_QUANTIZE = "int8"
    quantized = Embedder(resolve_spec(), pick_device())
    assert quantized.quantize == "int8" and quantized.model_id == fp32.model_id
    kinds = {type(module) for module in quantized.model.modules()}
    # Every MLP layer is int8; attention's out_proj is a kind torch leaves in fp32 on purpose.
    assert torch.ao.nn.quantized.dynamic.Linear in kinds and torch.nn.Linear not in kinds
    for seed in (1, 2, 3):
        a = np.asarray(fp32.embed_bytes(xray_png(seed)))
        b = np.asarray(quantized.embed_bytes(xray_png(seed)))
        assert abs(np.linalg.norm(b) - 1.0) < 1e-5
        assert float(a @ b) > 0.95


def test_an_unknown_quantization_is_refused(settings):
    from django.core.exceptions import ImproperlyConfigured

    from matching.embedder import Embedder, resolve_spec

    settings.RAIOX_CLIP_QUANTIZE = "int4"
    with pytest.raises(ImproperlyConfigured, match="RAIOX_CLIP_QUANTIZE"):
        Embedder(resolve_spec(), "cpu")
