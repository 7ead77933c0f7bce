"""fetch_model --from-file with a real ViT-B-32 checkpoint (random weights saved by torch.save):
the checksum, the load path, the model id recorded and the re-embedding that follows."""

from __future__ import annotations

import io

import pytest
import torch
from django.core.management import CommandError, call_command

from implants.models import ReferenceImage
from matching import embedder as embedder_module
from matching import workers as worker_services
from matching.canonical import PREPROCESS_VERSION
from matching.checkpoints import installed_checkpoint, sha256_of
from matching.models import WorkerState
from matching.search import nearest_implants

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import open_clip

    torch.manual_seed(1234)  # not the untrained fallback's seed: different weights, different vectors
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    path = tmp_path_factory.mktemp("ckpt") / "raiox-vitb32.pt"
    # Half precision halves the file; open_clip copies it into the float32 model on load.
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
    del model
    return path


@pytest.fixture
def fresh_embedder():
    """The embedder is built once per process: forget it around the test."""
    embedder_module._embedder, worker_services._state_recorded_at = None, None
    yield
    embedder_module._embedder, worker_services._state_recorded_at = None, None


def test_wrong_checksum_or_not_a_checkpoint_installs_nothing(settings, tmp_path, checkpoint):
    settings.RAIOX_CLIP_CACHE_DIR = tmp_path / "models"
    with pytest.raises(CommandError, match="Checksum mismatch"):
        call_command("fetch_model", "--from-file", str(checkpoint), "--sha256", "0" * 64, stdout=io.StringIO())
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CommandError, match="not a ViT-B-32 checkpoint"):
        call_command("fetch_model", "--from-file", str(junk), stdout=io.StringIO())
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").rglob("*.pt"))
    assert installed_checkpoint() is None


def test_install_from_file_then_reembed_with_the_new_model_id(settings, tmp_path, checkpoint, fresh_embedder):
    from implants import services
    from testkit.images import xray_png

    settings.RAIOX_CLIP_CACHE_DIR = tmp_path / "models"
    digest = sha256_of(checkpoint)
    out = io.StringIO()
    call_command("fetch_model", "--from-file", str(checkpoint), "--sha256", digest, stdout=out)
    assert f"sha256 {digest}" in out.getvalue()
    installed = installed_checkpoint()
    assert installed is not None and installed.sha256 == digest
    assert installed.model_id == f"ViT-B-32/raiox-vitb32-{digest[:12]}.pt+{PREPROCESS_VERSION}"
    assert sha256_of(tmp_path / "models" / "checkpoints" / f"raiox-vitb32-{digest[:12]}.pt") == digest

    manufacturer, _ = services.manufacturer_get_or_create(name="Neodent")
    implant, _ = services.implant_get_or_create(
        manufacturer=manufacturer, name="Titamax CM", connection="morse_taper", body_shape="parallel", thread_shape="v"
    )
    for seed in (1, 2):
        services.reference_image_create(implant=implant, image_bytes=xray_png(seed), filename="x.png")
    call_command("reembed", stdout=io.StringIO(), stderr=io.StringIO())  # the untrained fallback first
    untrained = {r.pk: list(r.embedding) for r in ReferenceImage.objects.all()}
    assert set(ReferenceImage.objects.values_list("embedding_model", flat=True)) == {
        f"ViT-B-32/untrained-seed0+{PREPROCESS_VERSION}"
    }

    # The operator points the setting at the installed file and restarts the worker.
    settings.RAIOX_CLIP_PRETRAINED = installed.path
    settings.RAIOX_ALLOW_UNTRAINED_MODEL = False  # a real checkpoint must load without the fallback
    embedder_module._embedder, worker_services._state_recorded_at = None, None
    out = io.StringIO()
    call_command("reembed", stdout=out, stderr=io.StringIO())
    assert f"Model: {installed.model_id}" in out.getvalue() and "UNTRAINED" not in out.getvalue()
    refs = list(ReferenceImage.objects.all())
    assert {r.embedding_model for r in refs} == {installed.model_id}
    assert all(list(r.embedding) != untrained[r.pk] for r in refs)
    state = WorkerState.objects.order_by("-last_seen").first()
    assert state.model_id == installed.model_id and not state.untrained
    hits = nearest_implants(list(refs[0].embedding), model_id=installed.model_id, k=1)
    assert [h.reference_image_id for h in hits] == [refs[0].pk]


def test_evaluate_compare_runs_the_running_model_and_a_checkpoint_side_by_side(tmp_path, checkpoint):
    from implants.synthetic_catalog import write_catalog
    from tests.builders.worker import embed_catalog

    csv_path, _, _ = write_catalog(tmp_path / "gen", implants=3, images=2, heldout=1)
    call_command(
        "import_catalog",
        str(csv_path),
        "--images-dir",
        str(tmp_path / "gen" / "imagens"),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    embed_catalog()
    out = io.StringIO()
    call_command(
        "evaluate_matching",
        "--folder",
        str(tmp_path / "gen" / "heldout"),
        "--compare",
        str(checkpoint),
        "--out",
        str(tmp_path / "rep"),
        stdout=out,
        stderr=io.StringIO(),
    )
    import json

    models = json.loads((tmp_path / "rep" / "report.json").read_text())["models"]
    assert [m["model_id"] for m in models] == [
        f"ViT-B-32/untrained-seed0+{PREPROCESS_VERSION}",
        f"ViT-B-32/raiox-vitb32.pt+{PREPROCESS_VERSION}",
    ]
    assert [m["untrained"] for m in models] == [True, False]
    assert all(m["queries"] == 3 for m in models)
    html = (tmp_path / "rep" / "report.html").read_text()
    assert f"ViT-B-32/raiox-vitb32.pt+{PREPROCESS_VERSION}" in html
    assert f"ViT-B-32/untrained-seed0+{PREPROCESS_VERSION} (não treinado)" in html
