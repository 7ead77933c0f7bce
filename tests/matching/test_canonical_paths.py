"""Every embedding path frames the picture the same canonical way, and the framing is part of the
model id (issue 20): catalogue pictures, bulk imports, re-embedding and the evaluation all go
through ``matching.canonical``; changing its version is a model switch (no mixed vectors)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image

from implants.models import ReferenceImage
from matching import canonical, services
from matching.batch import embed_reference_images
from matching.canonical import reference_view
from matching.embedder import get_embedder
from matching.evaluation.searchers import MemorySearch
from matching.search import nearest_implants
from tests.builders.worker import embed_catalog

pytestmark = pytest.mark.django_db


def _picture(reference: ReferenceImage) -> Image.Image:
    with default_storage.open(reference.image.name, "rb") as fh:
        return get_embedder().load_image(fh.read())


def _cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture
def reference(catalog) -> ReferenceImage:
    return ReferenceImage.objects.order_by("pk").first()


@pytest.fixture
def framed(reference):
    """The reference picture's vector through the canonical view, computed here directly, and the
    whole picture's (no framing), which every path must differ from."""
    embedder = get_embedder()
    picture = _picture(reference)
    raw = np.asarray(embedder._forward([reference_view(picture).image])[0])
    centred = raw - embedder.centre.numpy()  # hubness: centred on the fixed probe's mean
    expected = centred / np.linalg.norm(centred)
    whole = embedder.embed_uncanonical_baseline([picture])[0]
    assert _cos(expected, whole) < 0.999, "the canonical view must change what the model sees"
    return expected


def _stored(reference: ReferenceImage) -> list[float]:
    reference.refresh_from_db()
    assert reference.embedding_model == get_embedder().model_id
    return [float(x) for x in reference.embedding]


def test_the_model_id_names_the_preprocessing_version(monkeypatch):
    embedder = get_embedder()
    assert embedder.model_id == f"{embedder.spec.weights_id}+{canonical.PREPROCESS_VERSION}"
    before = embedder.model_id
    monkeypatch.setattr(canonical, "PREPROCESS_VERSION", "fx-next")
    assert embedder.model_id != before and embedder.model_id.endswith("+fx-next")


def test_the_centre_is_the_probe_mean_and_the_same_in_every_process():
    from matching.canonical import centre_probe_views
    from matching.embedder import Embedder

    embedder = get_embedder()
    views = centre_probe_views()
    assert len(views) >= 12
    again = Embedder(embedder.spec, "cpu")  # a second worker process builds its own
    assert np.allclose(embedder.centre.numpy(), again.centre.numpy(), atol=1e-5)
    vector = np.asarray(embedder.embed_images([views[0]])[0])
    assert abs(np.linalg.norm(vector) - 1) < 1e-5
    # Centring spreads the vectors: the probe's own views are no longer all within a few degrees.
    probe = np.asarray(embedder.embed_images(views[:8]))
    raw = np.asarray(embedder._forward([v.image for v in views[:8]]))
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    assert (probe @ probe.T).mean() < (raw @ raw.T).mean()


def test_a_catalogue_picture_is_embedded_through_the_canonical_view(reference, framed):
    ReferenceImage.objects.filter(pk=reference.pk).update(embedding=None, embedding_model="")
    services.reference_image_embed(reference_id=reference.pk)
    assert _cos(_stored(reference), framed) > 0.9999


def test_a_bulk_import_batch_is_embedded_through_the_canonical_view(reference, framed):
    ReferenceImage.objects.filter(pk=reference.pk).update(embedding=None, embedding_model="")
    assert embed_reference_images([reference.pk]) == 1
    assert _cos(_stored(reference), framed) > 0.9999


def test_reembed_embeds_through_the_canonical_view(reference, framed):
    call_command("reembed", "--all", stdout=io.StringIO(), stderr=io.StringIO())
    assert _cos(_stored(reference), framed) > 0.9999


def test_the_evaluation_embeds_the_catalogue_through_the_canonical_view(reference, framed):
    searcher = MemorySearch(get_embedder())
    assert _cos(searcher.matrix[searcher.by_ref[reference.pk]], framed) > 0.9999
    baseline = MemorySearch(get_embedder(), whole_film=True)
    assert _cos(baseline.matrix[baseline.by_ref[reference.pk]], framed) < 0.999


def test_a_new_preprocessing_version_is_a_model_switch_re_embedded_by_reembed(catalog, monkeypatch):
    embed_catalog()
    old_id = get_embedder().model_id
    query = [float(x) for x in ReferenceImage.objects.order_by("pk").first().embedding]
    assert nearest_implants(query, model_id=old_id, k=3)

    monkeypatch.setattr(canonical, "PREPROCESS_VERSION", "fx-next")
    new_id = get_embedder().model_id
    # The workers now run another model id: the old vectors are never searched with it.
    assert nearest_implants(query, model_id=new_id, k=3) == []
    out = io.StringIO()
    call_command("reembed", stdout=out, stderr=io.StringIO())
    total = ReferenceImage.objects.count()
    assert f"Reference images to embed: {total} of {total}" in out.getvalue()
    assert set(ReferenceImage.objects.values_list("embedding_model", flat=True)) == {new_id}
    assert len(nearest_implants(query, model_id=new_id, k=3)) == 3
    # An interrupted run continues where it stopped: nothing left to do.
    again = io.StringIO()
    call_command("reembed", stdout=again, stderr=io.StringIO())
    assert f"Reference images to embed: 0 of {total}" in again.getvalue()
