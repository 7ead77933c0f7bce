"""train_matcher (issue 21): learning from the catalogue and the confirmed cases, the checkpoint with
its own model id through the existing checkpoint path, the held-out comparison that gates
``--activate``, the safe switch, and the scheduled retraining (off by default).

Tiny sets: a few seed-catalogue implants, a few augmented views, a few epochs, the real
(untrained) ViT-B-32 tower."""

from __future__ import annotations

import io
import json

import pytest
import torch
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
    # Both switches audited, as from the admin (no user: the command line).
    from matching.models import TrainingActivation

    audit = TrainingActivation.objects.order_by("at", "pk").values_list("action", "run", "model_id", "user", "via")
    assert list(audit) == [
        ("activate", run.pk, run.model_id, None, "command"),
        ("deactivate", run.pk, UNTRAINED_ID, None, "command"),
    ]


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


def test_unfreezing_a_block_lowers_the_loss_and_its_checkpoint_embeds_with_the_trained_tower(settings, tmp_path):
    from matching.training import TowerTail, tower_tokens

    tiny_catalogue(3)
    base = worker_services.worker_embedder()
    picture = ReferenceImage.objects.order_by("pk").first()
    image = embedder_module.Embedder.load_image(picture.image.read())
    base_features = base.tower_features([image])
    base_vector = list(picture.embedding)
    # The split the training caches at (open_clip's own forward, repeated): the same features.
    first = len(base.model.visual.transformer.resblocks) - 2
    with torch.no_grad():
        split = TowerTail(base.model.visual, 2).eval()(tower_tokens(base, [image], first))
    assert torch.allclose(split, base_features, atol=1e-5)

    run, _ = train(
        "--epochs",
        "3",
        "--views-per-image",
        "2",
        "--eval-views",
        "1",
        "--unfreeze-blocks",
        "1",
        "--backbone-lr",
        "1e-4",
        tmp_path=tmp_path,
    )

    assert run.status == TrainingStatus.DONE, run.message
    assert run.parameters["train_unfreeze_blocks"] == 1 and run.parameters["train_backbone_lr"] == 1e-4
    assert run.results["unfrozen_blocks"] == 1 and run.results["seconds_per_epoch"] > 0
    losses = [point["loss"] for point in run.curves]
    assert losses[-1] < losses[0]
    assert run.model_id == f"{UNTRAINED_ID}+run{run.pk}"

    # The existing checkpoint path: the tower it loads is the trained one (its features differ
    # from the base's before any head), and the vectors the worker stores follow.
    settings.RAIOX_CLIP_PRETRAINED = run.checkpoint_path
    embedder_module._embedder = None  # a worker started with that setting
    trained = worker_services.worker_embedder()
    assert trained.model_id == run.model_id and trained.spec.trained["unfrozen_blocks"] == 1
    assert not torch.allclose(trained.tower_features([image]), base_features, atol=1e-4)
    call_command("reembed", stdout=io.StringIO(), stderr=io.StringIO())
    picture.refresh_from_db()
    assert picture.embedding_model == run.model_id and list(picture.embedding) != base_vector


# --- staff switch the workers' model from the admin ---------------------------------------------


def _finished_run(tmp_path, *, better: bool) -> TrainingRun:
    """A run as train_matcher records it, compared with the model the workers report. Its
    checkpoint is a stand-in: from the admin the re-embedding is queued for the workers, so
    nothing here loads it."""
    from matching import services

    checkpoint = tmp_path / f"run-{better}.pt"
    checkpoint.write_bytes(b"stand-in")
    run = services.training_run_start(
        base_model_id=UNTRAINED_ID, untrained_start=True, device="cpu", trigger="manual", parameters={}
    )

    def scores(top1: float) -> dict:
        rates = {"queries": 8, "top1": top1, "top3": 0.75}
        return {"all": rates, "in_training": rates, "heldout_implants": rates}

    return services.training_run_finish(
        run_id=run.pk,
        model_id=f"{UNTRAINED_ID}+run{run.pk}",
        checkpoint_path=str(checkpoint),
        sets={},
        curves=[],
        results={
            "set": "8 vistas retidas",
            "running": {"model_id": UNTRAINED_ID, **scores(0.25)},
            "new": {"model_id": f"{UNTRAINED_ID}+run{run.pk}", **scores(0.5 if better else 0.25)},
            "better": better,
            "base_weights_id": "ViT-B-32/untrained-seed0",
        },
        seconds=1.0,
    )


def _staff(client, username: str, *codenames: str):
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(username, password="x-pass-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def test_staff_with_the_permission_activate_and_roll_back_from_the_admin_audited(client, tmp_path):
    from matching.models import TrainingActivation
    from matching.services import REEMBED_TASK
    from tests.builders.submissions import queued

    worker_services.worker_state_record(model_id=UNTRAINED_ID, untrained=True, device="cpu")
    run = _finished_run(tmp_path, better=True)
    manifest = tmp_path / "models" / ACTIVE_MANIFEST
    page_url = f"/admin/matching/trainingrun/{run.pk}/change/"

    # Anonymous: the admin's login; staff who may only read the runs: no button, and a 403.
    assert client.post(f"/admin/matching/trainingrun/{run.pk}/activate/").status_code == 302
    _staff(client, "leitor", "view_trainingrun")
    assert "Ativar este modelo" not in client.get(page_url).content.decode()
    assert client.post(f"/admin/matching/trainingrun/{run.pk}/activate/").status_code == 403
    assert client.post("/admin/matching/trainingrun/deactivate/").status_code == 403
    assert not manifest.exists() and not TrainingActivation.objects.exists()

    operator = _staff(client, "operador", "view_trainingrun", "activate_trainingrun")
    assert "Ativar este modelo" in client.get(page_url).content.decode()
    response = client.post(f"/admin/matching/trainingrun/{run.pk}/activate/", follow=True)

    assert response.status_code == 200 and "sem calibração" in response.content.decode()
    assert json.loads(manifest.read_text())["model_id"] == run.model_id
    run.refresh_from_db()
    assert run.activated_at is not None
    assert queued(REEMBED_TASK) == [()]  # the workers re-embed the catalogue, not the web process
    assert "Voltar ao modelo anterior" in response.content.decode()

    response = client.post("/admin/matching/trainingrun/deactivate/", follow=True)
    assert response.status_code == 200 and "o modelo configurado" in response.content.decode()
    assert not manifest.exists()
    audit = list(
        TrainingActivation.objects.order_by("at", "pk").values_list(
            "action", "run", "previous_model_id", "model_id", "user", "via"
        )
    )
    assert audit == [
        ("activate", run.pk, UNTRAINED_ID, run.model_id, operator.pk, "admin"),
        ("deactivate", run.pk, run.model_id, "", operator.pk, "admin"),
    ]
    assert len(queued(REEMBED_TASK)) == 2
    # Nothing to roll back any more: said in Portuguese, not an error page.
    response = client.post("/admin/matching/trainingrun/deactivate/", follow=True)
    assert response.status_code == 200 and "Nenhum modelo treinado está ativo" in response.content.decode()


def test_the_admin_refuses_a_run_that_was_not_better_with_a_message(admin_client, tmp_path):
    from matching.models import TrainingActivation

    worker_services.worker_state_record(model_id=UNTRAINED_ID, untrained=True, device="cpu")
    run = _finished_run(tmp_path, better=False)

    response = admin_client.post(f"/admin/matching/trainingrun/{run.pk}/activate/", follow=True)

    body = response.content.decode()
    assert response.status_code == 200 and "Ativação recusada" in body and "não é melhor" in body
    assert not (tmp_path / "models" / ACTIVE_MANIFEST).exists()
    run.refresh_from_db()
    assert run.activated_at is None and not TrainingActivation.objects.exists()
