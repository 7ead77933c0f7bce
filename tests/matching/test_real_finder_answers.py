"""The worker with the real fixture finder (``matching.fixtures.find_fixtures``) on generated films
where the answer is obvious (``tests/films.py``): nothing on a blank film, one fixture on a film
with one screw, three regions with their quadrants on a panoramic with three, the quality gate on
a blurred film. The other worker tests script the finder; these check the two fit together."""

from __future__ import annotations

import pytest
from django.test import Client

from matching import tasks
from submissions.models import Status, Submission
from submissions.services import IntakeRecord, submission_create
from tests.films import PANORAMIC_SCREWS, PANORAMIC_SIZE, Screw, film, png

pytestmark = pytest.mark.django_db


def _processed(image) -> Submission:
    submission, _ = submission_create(intake=IntakeRecord(source="upload", image_bytes=png(image), filename="rx.png"))
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


def test_a_film_with_one_screw_has_one_fixture_around_it(catalog):
    screw = Screw(200, 150, 180, 50)
    submission = _processed(film((400, 300), [screw]))
    assert len(submission.fixtures) == 1
    assert _iou(submission.fixtures[0]["box"], screw.box) >= 0.5
    assert submission.fixtures[0]["apex"] in ("down", "unknown")
    assert not submission.crops.exists()


def test_a_panoramic_with_three_screws_gives_three_regions_with_their_quadrants():
    panoramic = _processed(film(PANORAMIC_SIZE, PANORAMIC_SCREWS))
    children = list(panoramic.crops.order_by("pk"))
    assert len(children) == 3 and not panoramic.matches.exists()
    assert [c.crop_box["suggested_quadrant"] for c in children] == [1, 4, 3]
    for fixture, screw in zip(panoramic.fixtures, PANORAMIC_SCREWS, strict=True):
        assert _iou(fixture["box"], screw.box) >= 0.5
    assert panoramic.fixtures[0]["apex"] in ("up", "unknown")
    for child in children:
        tasks.process_submission(child.pk)
        child.refresh_from_db()
        assert child.status == Status.DONE


def test_a_blurred_film_is_told_to_send_a_sharper_one():
    submission = _processed(film((400, 300), [Screw(200, 150, 180, 50)], blur=6))
    assert "blurred" in submission.quality_problems
    page = Client().get(f"/r/{submission.token}/").content.decode()
    assert "Confiança alta" not in page and 'data-testid="quality"' in page
