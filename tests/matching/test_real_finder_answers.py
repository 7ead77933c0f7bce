"""The worker with the real fixture finder (``matching.fixtures.find_fixtures``) on generated films
with their truth: nothing on a blank film (``testkit/films.py``), one fixture on a generated lower-jaw
film, three regions with their quadrants on a generated panoramic of three
(``implants.synthetic_films``), the quality gate on a blurred film. The other worker tests script
the finder; these check the two fit together."""

from __future__ import annotations

import pytest
from django.test import Client

from matching import tasks
from submissions.models import Status, Submission
from submissions.services import IntakeRecord, submission_create
from testkit.films import Screw, film
from testkit.images import encode

pytestmark = pytest.mark.django_db


def _processed(image) -> Submission:
    submission, _ = submission_create(
        intake=IntakeRecord(source="upload", image_bytes=encode(image), filename="rx.png")
    )
    assert tasks.process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    return submission


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def test_a_blank_film_has_no_fixture():
    submission = _processed(film((400, 300)))
    assert submission.fixtures == [] and not submission.matches.exists()
    assert Client().get(f"/r/{submission.token}/status.json").json()["no_fixture_found"] is True


def _generated(condition: str, index: int, seed: int):
    """A generated film (``implants.synthetic_films``) with its truth: the seed catalogue's own
    implants among teeth, crowns and bone, where each fixture is written down."""
    from PIL import Image

    from implants.synthetic_films import make_film

    generated = make_film(condition, index, seed=seed)
    return Image.fromarray(generated.image), generated.fixtures


def test_a_film_with_one_implant_has_one_fixture_around_it(catalog):
    image, truth = _generated("lower", 3, seed=5)
    submission = _processed(image)
    assert len(submission.fixtures) == 1
    assert _iou(submission.fixtures[0]["box"], truth[0]["box"]) >= 0.5
    assert submission.fixtures[0]["apex"] in ("down", "unknown")
    assert not submission.crops.exists()


def test_a_panoramic_with_three_implants_gives_three_regions_with_their_quadrants():
    image, truth = _generated("panoramic", 6, seed=5)
    assert len(truth) == 3
    panoramic = _processed(image)
    children = list(panoramic.crops.order_by("pk"))
    assert len(children) == 3 and not panoramic.matches.exists()
    # Each region is numbered like the fixture it was cut around, left to right, and suggests the
    # quadrant the implant is really in (the film's left is the patient's right).
    by_number = {f["number"]: f for f in panoramic.fixtures}
    for child in children:
        found = by_number[child.crop_box["region"]]
        real = max(truth, key=lambda t: _iou(found["box"], t["box"]))
        assert _iou(found["box"], real["box"]) >= 0.5
        assert child.crop_box["suggested_quadrant"] == real["quadrant"]
        assert found["apex"] in (real["apex"], "unknown")
    for child in children:
        tasks.process_submission(child.pk)
        child.refresh_from_db()
        assert child.status == Status.DONE


def test_a_blurred_film_is_told_to_send_a_sharper_one():
    submission = _processed(film((400, 300), [Screw(200, 150, 180, 50)], blur=6))
    assert "blurred" in submission.quality_problems
    page = Client().get(f"/r/{submission.token}/").content.decode()
    assert "Confiança alta" not in page and 'data-testid="quality"' in page
