"""The calibrated probability: fitted per model on a labelled set, used by the worker only for the
model it runs, activated and rolled back by staff in the admin (audited), read by the pages."""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth.models import User

from implants.models import Implant
from matching import calibration as calibrating
from matching import tasks
from matching.calibration import calibration_fit
from matching.canonical import PREPROCESS_VERSION
from matching.evaluation.figures import similarity_label
from matching.models import Calibration, CalibrationActivation
from submissions.models import Submission
from submissions.services import IntakeRecord, submission_create
from testkit.images import xray_png
from tests.calibrations import RUNNING_MODEL, active_calibration

pytestmark = pytest.mark.django_db


def _chance_observations(n_implants: int, queries: int, seed: int = 0) -> list[calibrating.Observation]:
    """A model at chance: high, close similarities whatever the X-ray, the right implant at a
    random rank of the whole catalogue (in the first five only 5 times in ``n_implants``)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(queries):
        sims = np.sort(rng.uniform(0.95, 0.999, n_implants))[::-1]
        rank = int(rng.integers(n_implants))
        out.append(calibrating.Observation(tuple(float(s) for s in sims[:5]), rank if rank < 5 else None))
    return out


def _new_submission(seed: int) -> Submission:
    submission, _ = submission_create(
        intake=IntakeRecord(source="upload", image_bytes=xray_png(seed), filename="x.png")
    )
    return submission


def _processed(seed: int) -> Submission:
    submission = _new_submission(seed)
    assert tasks.process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    return submission


# --- the fit -------------------------------------------------------------------------------------


def test_a_model_at_chance_gets_no_alta_and_a_probability_near_chance():
    n = 32
    fitted = calibrating.fit(_chance_observations(n, 300, seed=1), k=3)
    assert fitted.bands.high is None and fitted.bands.medium is None  # the set never shows it
    # On answers it was not fitted on: still no "alta", the first candidate near 1 in 32.
    held = calibrating.assess(_chance_observations(n, 300, seed=2), fitted.params, fitted.bands)
    assert held["bands"]["alta"]["queries"] == 0 and held["bands"]["media"]["queries"] == 0
    assert 0.5 / n <= held["mean_probability"] <= 2.0 / n
    assert held["ece"] <= 0.05


def test_a_model_that_is_right_gets_alta_where_the_set_shows_it():
    rng = np.random.default_rng(3)
    observations = []
    for _ in range(200):
        right = rng.random() < 0.8
        sims = list(np.sort(rng.uniform(0.90, 0.95, 5))[::-1])
        if right:
            sims[0] = 0.97 + float(rng.uniform(0, 0.02))  # right answers stand out
        observations.append(calibrating.Observation(tuple(sims), 0 if right else None))
    fitted = calibrating.fit(observations, k=3)
    figures = calibrating.assess(observations, fitted.params, fitted.bands)
    assert fitted.bands.high is not None
    assert figures["bands"]["alta"]["queries"] >= 100 and figures["bands"]["alta"]["right"] >= 0.9


def test_the_similarity_labels_before_calibration_are_kept_as_the_baseline():
    assert similarity_label(0.95, None, 0.90) == "alta"
    assert similarity_label(0.95, None, 0.94) == "media"  # a near tie is never "alta"
    assert similarity_label(0.93, None, 0.928) == "baixa"  # a tie
    assert similarity_label(0.70, None, None) == "baixa"


# --- the worker ----------------------------------------------------------------------------------


def test_the_worker_stores_a_probability_near_chance_from_a_calibration_of_a_model_at_chance(embedded_catalog):
    n = Implant.objects.filter(is_active=True).count()
    calibration = calibration_fit(model_id=RUNNING_MODEL, observations=_chance_observations(n, 300), dataset="ao acaso")
    from matching.calibration import calibration_activate

    calibration_activate(calibration_id=calibration.pk, user=None)
    submission = _processed(3)
    matches = list(submission.matches.order_by("rank"))
    assert matches and all(m.probability is not None for m in matches)
    assert all(m.band != "alta" for m in matches)
    assert matches[0].probability <= 4.0 / n  # near chance, whatever the similarity says
    assert matches[0].similarity > 0.9  # ... which reads "high" with untrained weights


def test_a_calibration_for_another_model_or_preprocessing_is_never_used(embedded_catalog, client):
    active_calibration("ViT-B-32/laion2b_s34b_b79k+" + PREPROCESS_VERSION)  # other weights
    active_calibration(RUNNING_MODEL, preprocess_version="fx0")  # other framing of the pictures
    submission = _processed(4)
    assert all(m.probability is None and m.band == "" for m in submission.matches.all())
    page = client.get(f"/r/{submission.token}/").content.decode()
    assert "Modelo ainda não calibrado" in page and "Probabilidade estimada" not in page

    # Activated for the running model: the next job uses it, without a restart.
    active_calibration(RUNNING_MODEL)
    later = _processed(5)
    assert all(m.probability is not None for m in later.matches.all())
    assert "Probabilidade estimada:" in client.get(f"/r/{later.token}/").content.decode()


# --- staff: evaluate, activate, roll back ----------------------------------------------------------


def _calibration(dataset: str) -> Calibration:
    return calibration_fit(model_id=RUNNING_MODEL, observations=_chance_observations(32, 80), dataset=dataset)


def test_activation_and_roll_back_through_the_admin_are_audited(admin_client):
    admin = User.objects.get(username="admin")
    first, second = _calibration("filmes semente 11"), _calibration("filmes semente 13")
    url = "/admin/matching/calibration/"
    response = admin_client.post(url, {"action": "activate_selected", "_selected_action": [first.pk]}, follow=True)
    assert "ativa para" in response.content.decode()
    first.refresh_from_db()
    assert first.is_active and first.activated_by == admin and first.activated_at is not None

    # The second, from its own page's button; the first is kept, inactive.
    response = admin_client.post(f"{url}{second.pk}/activate/", {"next": f"{url}{second.pk}/change/"})
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_active and not first.is_active
    assert Calibration.objects.count() == 2

    # Roll back: the first again, then none (it replaced none).
    admin_client.post(url, {"action": "roll_back_selected", "_selected_action": [second.pk]}, follow=True)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.is_active and not second.is_active
    admin_client.post(url, {"action": "roll_back_selected", "_selected_action": [first.pk]}, follow=True)
    assert not Calibration.objects.filter(is_active=True).exists()

    audit = list(CalibrationActivation.objects.order_by("at", "pk").values_list("action", "calibration", "previous"))
    assert audit == [
        ("activate", first.pk, None),
        ("activate", second.pk, first.pk),
        ("rollback", first.pk, second.pk),
        ("deactivate", first.pk, first.pk),
    ]
    assert set(CalibrationActivation.objects.values_list("user", flat=True)) == {admin.pk}
    page = admin_client.get(f"{url}{first.pk}/change/").content.decode()
    assert "volta à anterior" in page and "filmes semente 11" in page


def test_staff_without_the_permission_cannot_activate(client):
    calibration = _calibration("x")
    user = User.objects.create_user("leitor", password="x-pass-123", is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="view_calibration"))
    client.force_login(user)
    assert client.post(f"/admin/matching/calibration/{calibration.pk}/activate/").status_code == 403
    calibration.refresh_from_db()
    assert not calibration.is_active and not CalibrationActivation.objects.exists()
