"""train_matcher (issue 21): learning from the catalogue and the confirmed cases, the checkpoint with
its own model id through the existing checkpoint path, the held-out comparison that gates
``--activate``, the safe switch, and the scheduled retraining (off by default).

Tiny sets: a few seed-catalogue implants, a few augmented views, a few epochs, the real
(untrained) ViT-B-32 tower."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_q.models import Schedule

from implants import services as implant_services
from implants.catalog import CATALOG, MANUFACTURERS
from implants.models import ReferenceImage, ReferenceSource
from implants.seed import seed_features
from implants.synthetic import Silhouette, render_png
from matching import embedder as embedder_module
from matching import tasks
from matching import workers as worker_services
from matching.canonical import PREPROCESS_VERSION
from matching.embedder import ACTIVE_MANIFEST
from matching.models import TrainingRun, TrainingStatus, WorkerState
from matching.search import nearest_implants

pytestmark = pytest.mark.django_db

UNTRAINED_ID = f"ViT-B-32/untrained-seed0+{PREPROCESS_VERSION}"
TINY = ("--views-per-image", "3", "--eval-views", "2", "--heldout-implants", "0.2")


@pytest.fixture(autouse=True)
def models_in_tmp(settings, tmp_path):
    """Checkpoints and the activation manifest under the test's folder; the process's embedder
    forgotten around the test (it is built once per process)."""
    settings.RAIOX_CLIP_CACHE_DIR = tmp_path / "models"
    embedder_module._embedder, worker_services._state_recorded_at = None, None
    yield
    embedder_module._embedder, worker_services._state_recorded_at = None, None


def tiny_catalogue(count: int) -> list:
    """The first ``count`` seed implants, each with its catalogue picture, embedded.

    Ids start again at 1: a training run's augmentations are seeded by each picture's id (the
    same catalogue draws the same views), so on a set this tiny whether 40 epochs beat the start
    depended on how many ids earlier tests had used (a CI run after test_tasks drew a worse set)."""
    with connection.cursor() as cursor:
        for table in ("implants_manufacturer", "implants_implant", "implants_referenceimage"):
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), 1, false)", [table])
    implants = []
    for data in MANUFACTURERS:
        manufacturer, _ = implant_services.manufacturer_get_or_create(**data)
        for item in CATALOG[manufacturer.name]:
            if len(implants) == count:
                break
            implant, _ = implant_services.implant_get_or_create(
                manufacturer=manufacturer, name=item["name"], **seed_features()[(data["name"], item["name"])]
            )
            implant_services.reference_image_create(
                implant=implant,
                image_bytes=render_png(Silhouette(**item["drawing"]), seed_name=str(implant)),
                filename="ref.png",
            )
            implants.append((implant, item))
    call_command("reembed", stdout=io.StringIO(), stderr=io.StringIO())
    return implants


def confirmed_case(implant, item, n: int) -> ReferenceImage:
    return implant_services.reference_image_create(
        implant=implant,
        image_bytes=render_png(Silhouette(**item["drawing"]), seed_name=f"caso {n} {implant}"),
        filename="case.png",
        source=ReferenceSource.CONFIRMED_CASE,
    )


def train(*args: str, tmp_path) -> tuple[TrainingRun, str]:
    out = io.StringIO()
    call_command("train_matcher", *TINY, *args, "--out", str(tmp_path / "report"), stdout=out, stderr=io.StringIO())
    return TrainingRun.objects.latest("created_at"), out.getvalue()


def test_training_lowers_its_loss_and_writes_a_checkpoint_that_loads_with_its_own_model_id(settings, tmp_path):
    implants = tiny_catalogue(5)
    confirmed_case(*implants[0], 1)
    call_command("reembed", stdout=io.StringIO(), stderr=io.StringIO())  # the worker embedded the case

    run, printed = train("--epochs", "12", tmp_path=tmp_path)

    assert run.status == TrainingStatus.DONE, run.message
    losses = [point["loss"] for point in run.curves]
    assert run.curves[0]["epoch"] == 0 and run.curves[-1]["epoch"] == 12
    assert losses[-1] < losses[0]
    # The split is by implant image: a held-out implant has no picture in training.
    assert run.sets["heldout_implants"] and not set(run.sets["heldout_implants"]) & set(run.sets["train_implants"])
    assert run.sets["train_sources"].get(ReferenceSource.CONFIRMED_CASE) == 1
    assert set(run.results) >= {"running", "new", "better"}
    assert run.results["running"]["model_id"] == UNTRAINED_ID
    for key in ("running", "new"):
        assert run.results[key]["heldout_implants"]["queries"] > 0 and run.results[key]["in_training"]["queries"] > 0
    assert run.model_id == f"{UNTRAINED_ID}+run{run.pk}" and run.untrained_start
    assert "NÃO TREINADOS" in printed and run.model_id in printed
    report = json.loads((tmp_path / "report" / "training.json").read_text())
    assert report["model_id"] == run.model_id and report["curves"] == run.curves

    # The existing checkpoint path: RAIOX_CLIP_PRETRAINED names the file; the model id is the run's
    # own, the head is applied to every vector (so they differ from the running model's).
    before = {r.pk: list(r.embedding) for r in ReferenceImage.objects.all()}
    settings.RAIOX_CLIP_PRETRAINED = run.checkpoint_path
    embedder_module._embedder = None  # a worker started with that setting
    embedder = worker_services.worker_embedder()
    assert embedder.model_id == run.model_id and embedder.head is not None
    assert embedder.untrained  # trained from untrained weights: the banner stays
    assert WorkerState.objects.get().model_id == run.model_id
    call_command("reembed", stdout=io.StringIO(), stderr=io.StringIO())
    after = ReferenceImage.objects.all()
    assert set(after.values_list("embedding_model", flat=True)) == {run.model_id}
    assert all(list(r.embedding) != before[r.pk] for r in after)

    # fetch_model --from-file installs it like any checkpoint, and it keeps its model id.
    from matching.checkpoints import installed_checkpoint

    call_command("fetch_model", "--from-file", run.checkpoint_path, stdout=io.StringIO())
    assert installed_checkpoint().model_id == run.model_id


def test_activate_is_refused_when_the_new_model_is_not_better(tmp_path):
    tiny_catalogue(4)

    # No epoch: the new model is the running one (the head starts as the identity), so no better.
    with pytest.raises(CommandError, match="Ativação recusada.*não é melhor"):
        train("--epochs", "0", "--activate", tmp_path=tmp_path)

    run = TrainingRun.objects.get()
    assert run.status == TrainingStatus.DONE and run.results["better"] is False
    assert run.results["new"]["all"] == run.results["running"]["all"]
    assert run.activated_at is None
    assert not (tmp_path / "models" / ACTIVE_MANIFEST).exists()
    assert worker_services.worker_embedder().model_id == UNTRAINED_ID
    assert set(ReferenceImage.objects.values_list("embedding_model", flat=True)) == {UNTRAINED_ID}


def test_activate_switches_the_workers_and_reembeds_the_catalogue_when_better(tmp_path):
    tiny_catalogue(6)
    worker_services.worker_embedder()  # a worker running the untrained model
    assert WorkerState.objects.get().model_id == UNTRAINED_ID

    run, printed = train("--epochs", "40", "--activate", tmp_path=tmp_path)

    assert run.results["better"] is True, run.results  # training beats its start on its own implants
    run.refresh_from_db()
    assert run.activated_at is not None
    manifest = json.loads((tmp_path / "models" / ACTIVE_MANIFEST).read_text())
    assert manifest["model_id"] == run.model_id and manifest["path"] == run.checkpoint_path
    # Every process's embedder follows the manifest on its next job, no restart; the worker says so.
    assert worker_services.worker_embedder().model_id == run.model_id
    assert WorkerState.objects.get().model_id == run.model_id
    # The catalogue was re-embedded by the new model: no vector of another model id is left.
    assert set(ReferenceImage.objects.values_list("embedding_model", flat=True)) == {run.model_id}
    vector = [float(x) for x in ReferenceImage.objects.first().embedding]
    assert nearest_implants(vector, model_id=run.model_id)
    assert not nearest_implants(vector, model_id=UNTRAINED_ID)
    assert "sem calibração" in printed

    # Rolling back the same way: the configured model again, the catalogue re-embedded by it.
    call_command("train_matcher", "--deactivate", stdout=io.StringIO(), stderr=io.StringIO())
    assert not (tmp_path / "models" / ACTIVE_MANIFEST).exists()
    assert worker_services.worker_embedder().model_id == UNTRAINED_ID
    assert WorkerState.objects.get().model_id == UNTRAINED_ID
    assert set(ReferenceImage.objects.values_list("embedding_model", flat=True)) == {UNTRAINED_ID}
    with pytest.raises(CommandError, match="Nenhum modelo treinado está ativo"):
        call_command("train_matcher", "--deactivate", stdout=io.StringIO())


def test_a_checkpoint_for_another_preprocessing_is_refused(tmp_path, settings, monkeypatch):
    tiny_catalogue(3)
    run, _ = train("--epochs", "1", tmp_path=tmp_path)
    monkeypatch.setattr("matching.canonical.PREPROCESS_VERSION", "fx-next")
    settings.RAIOX_CLIP_PRETRAINED = run.checkpoint_path
    embedder_module._embedder = None  # a worker started with that setting
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="train_matcher again"):
        embedder_module.get_embedder()


def test_the_scheduled_retraining_is_off_by_default_and_trains_once_enough_cases_came(settings, tmp_path):
    implants = tiny_catalogue(4)
    assert settings.RAIOX_AUTO_RETRAIN_MIN_NEW_CASES == 0
    call_command("ensure_schedules", stdout=io.StringIO())
    assert not Schedule.objects.filter(func="matching.tasks.retrain_when_enough_cases").exists()
    confirmed_case(*implants[1], 1)
    confirmed_case(*implants[2], 2)
    assert tasks.retrain_when_enough_cases() == "off"
    assert not TrainingRun.objects.exists()

    settings.RAIOX_AUTO_RETRAIN_MIN_NEW_CASES = 3
    call_command("ensure_schedules", stdout=io.StringIO())
    schedule = Schedule.objects.get(func="matching.tasks.retrain_when_enough_cases")
    assert schedule.schedule_type == Schedule.DAILY and "timeout" in schedule.kwargs
    tiny = {"views_per_image": 2, "eval_views": 1, "epochs": 3}
    assert tasks.retrain_when_enough_cases(**tiny) == "waiting: 2 of 3 new confirmed cases"

    confirmed_case(*implants[3], 3)
    outcome = tasks.retrain_when_enough_cases(**tiny)

    run = TrainingRun.objects.get()
    assert outcome == f"run {run.pk}: {TrainingStatus.DONE}"
    assert run.trigger == "scheduled" and run.results and run.curves
    # Evaluated, never activated: staff decide from the report.
    assert run.activated_at is None and not (tmp_path / "models" / ACTIVE_MANIFEST).exists()
    assert worker_services.worker_embedder().model_id == UNTRAINED_ID
    assert not ReferenceImage.objects.exclude(embedding_model__in=("", UNTRAINED_ID)).exists()
    # Counted from the last run: nothing new since.
    assert tasks.retrain_when_enough_cases(**tiny) == "waiting: 0 of 3 new confirmed cases"

    settings.RAIOX_AUTO_RETRAIN_MIN_NEW_CASES = 0
    call_command("ensure_schedules", stdout=io.StringIO())
    assert not Schedule.objects.filter(func="matching.tasks.retrain_when_enough_cases").exists()


def test_the_admin_lists_runs_with_their_curve_and_results(admin_client, tmp_path):
    tiny_catalogue(3)
    run, _ = train("--epochs", "2", tmp_path=tmp_path)

    listing = admin_client.get("/admin/matching/trainingrun/")
    page = admin_client.get(f"/admin/matching/trainingrun/{run.pk}/change/")

    assert listing.status_code == 200 and run.model_id in listing.content.decode()
    body = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in body and "polyline" in body  # the learning curve
    assert "fora do treino" in body and run.results["set"] in body
