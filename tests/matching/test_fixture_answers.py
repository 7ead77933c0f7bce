"""What the worker answers from the fixtures it finds (issue 20): nothing found, one fixture, one
region per fixture when several (numbered, with a suggested quadrant), the dentist's regions
overriding the finder, the quality gate, both orientations when the apex end is uncertain, and a
re-delivered task creating no second set of regions.

The finder is scripted here (``matching.fixtures.find_fixtures`` replaced by a chosen report), so
these tests are about the worker and the pages, not about what the finder sees;
``test_real_finder_answers`` below runs the real finder on generated films."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from matching import fixtures as finder
from matching import tasks
from matching.fixtures import Fixture, FixtureReport, as_grey
from submissions.fixtures import QUALITY_MESSAGES, region_box, suggested_quadrant
from submissions.models import Status, Submission
from submissions.services import IntakeRecord, MatchCandidate, submission_create, submission_record_result
from testkit.films import PANORAMIC_SCREWS, PANORAMIC_SIZE, Screw, film
from testkit.images import encode

pytestmark = pytest.mark.django_db


def _fixture(screw: Screw, *, apex: str | None = None, score: float = 0.9, problems=()) -> Fixture:
    return Fixture(
        box=screw.box,
        axis_deg=0.0,
        apex=apex or screw.apex,
        score=score,
        problems=tuple(problems),
        length=screw.length,
        breadth=screw.breadth,
    )


def scripted(monkeypatch, film_fixtures, *, problems=(), region_fixtures=None) -> list[tuple[int, int]]:
    """The finder answers ``film_fixtures`` for a picture of the film's size and, for any other
    (a region cut from it), one fixture in its middle (or ``region_fixtures``); returns the sizes
    it was asked about."""
    asked: list[tuple[int, int]] = []

    def find(image):
        grey = as_grey(image)
        h, w = grey.shape
        asked.append((w, h))
        if (w, h) in film_fixtures:
            found = film_fixtures[(w, h)]
        elif region_fixtures is not None:
            found = region_fixtures
        else:
            found = [Fixture(box=(w // 4, h // 8, 3 * w // 4, 7 * h // 8), axis_deg=0.0, apex="down", score=0.8)]
        return FixtureReport(fixtures=list(found), width=w, height=h, quality={"problems": list(problems)})

    monkeypatch.setattr(finder, "find_fixtures", find)
    return asked


def upload(image) -> Submission:
    submission, _ = submission_create(
        intake=IntakeRecord(source="upload", image_bytes=encode(image), filename="rx.png")
    )
    return submission


def _status(client: Client, submission: Submission) -> dict:
    return client.get(f"/r/{submission.token}/status.json").json()


def test_a_film_with_no_fixture_says_so_and_offers_the_marking(monkeypatch, client):
    picture = film((400, 300))
    scripted(monkeypatch, {(400, 300): []})
    submission = upload(picture)
    assert tasks.process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    assert submission.status == Status.DONE and submission.fixtures == [] and not submission.matches.exists()
    page = client.get(f"/r/{submission.token}/").content.decode()
    assert "Não encontramos um implante nesta radiografia." in page
    assert 'data-testid="no-fixture"' in page and 'id="crop-form"' in page  # the manual marking
    assert "Implantes mais parecidos" not in page and 'data-testid="candidate"' not in page
    status = _status(client, submission)
    assert status["no_fixture_found"] is True and status["fixtures"] == []
    assert "Não encontramos" in status["html"]


def test_a_film_with_one_fixture_is_answered_with_its_box(monkeypatch, client, embedded_catalog):
    screw = Screw(200, 150, 180, 50)
    scripted(monkeypatch, {(400, 300): [_fixture(screw)]})
    submission = upload(film((400, 300), [screw]))
    assert tasks.process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    assert submission.matches.count() == 3 and not submission.quality_problems
    assert submission.fixtures == [{**_fixture(screw).as_json(), "number": 1}]
    status = _status(client, submission)
    assert status["no_fixture_found"] is False
    assert status["fixtures"] == [{"box": list(screw.box), "axis_deg": 0.0, "apex": "down", "score": 0.9}]
    page = client.get(f"/r/{submission.token}/").content.decode()
    assert "Implantes mais parecidos" in page and page.count('data-testid="candidate"') == 3


def test_three_fixtures_give_three_numbered_regions_and_no_whole_film_answer(monkeypatch, client, embedded_catalog):
    width, height = PANORAMIC_SIZE
    found = [_fixture(s, score=0.9 - n / 10) for n, s in enumerate(PANORAMIC_SCREWS)]
    scripted(monkeypatch, {PANORAMIC_SIZE: list(reversed(found))})
    panoramic = upload(film(PANORAMIC_SIZE, PANORAMIC_SCREWS))
    assert tasks.process_submission(panoramic.pk) == "done"
    panoramic.refresh_from_db()
    assert not panoramic.matches.exists() and panoramic.embedding is None
    children = list(panoramic.crops.order_by("pk"))
    assert len(children) == 3
    # Numbered left to right, each cut with a margin, the quadrant suggested, the tooth left empty.
    assert [c.crop_box["region"] for c in children] == [1, 2, 3]
    assert [c.crop_box["suggested_quadrant"] for c in children] == [1, 4, 3]
    assert all(c.tooth == "" and c.crop_box["found"] for c in children)
    for child, screw in zip(children, PANORAMIC_SCREWS, strict=True):
        x, y, w, h = region_box(screw.box, width, height)
        assert (child.crop_box["x"], child.crop_box["y"], child.crop_box["width"], child.crop_box["height"]) == (
            x,
            y,
            w,
            h,
        )
        assert (child.crop_box["image_width"], child.crop_box["image_height"]) == PANORAMIC_SIZE
        assert child.status == Status.RECEIVED  # queued with the film's result
    assert [f["number"] for f in panoramic.fixtures] == [1, 2, 3]
    assert [f["box"] for f in panoramic.fixtures] == [list(s.box) for s in PANORAMIC_SCREWS]

    for child in children:
        tasks.process_submission(child.pk)  # the first one's batch takes the others
        child.refresh_from_db()
        assert child.status == Status.DONE and child.matches.count() == 3
    page = client.get(f"/r/{panoramic.token}/").content.decode()
    assert "Encontramos 3 implantes nesta radiografia" in page
    assert page.count('data-testid="region"') == 3 and page.count('data-testid="region-mark"') == 3
    assert page.count('data-testid="region-candidate"') == 9
    assert "Sugestão: quadrante 1" in page and "Sugestão: quadrante 4" in page and "Sugestão: quadrante 3" in page
    assert f'viewBox="0 0 {width} {height}"' in page
    # The film itself: no blended whole-film answer, tie warning or review offer.
    assert "Implantes mais parecidos" not in page and 'data-testid="lookalike"' not in page
    assert 'data-testid="candidate"' not in page and 'data-testid="review' not in page
    answer = client.get(f"/r/{panoramic.token}/status.json").json()
    assert answer["no_fixture_found"] is False and len(answer["fixtures"]) == 3


def test_a_redelivered_task_creates_no_second_set_of_regions(monkeypatch):
    found = [_fixture(s) for s in PANORAMIC_SCREWS]
    scripted(monkeypatch, {PANORAMIC_SIZE: found})
    panoramic = upload(film(PANORAMIC_SIZE, PANORAMIC_SCREWS))
    assert tasks.process_submission(panoramic.pk) == "done"
    # The worker was killed after the commit but before acknowledging: delivered again.
    assert tasks.process_submission(panoramic.pk) == "already done"
    Submission.objects.filter(pk=panoramic.pk).update(status=Status.PROCESSING, started_at=None)
    assert tasks.process_submission(panoramic.pk) == "done"
    assert panoramic.crops.count() == 3
    # And the service itself, called twice, answers the same regions.
    from submissions.services import submission_create_found_regions

    again = submission_create_found_regions(
        submission_id=panoramic.pk,
        image=film(PANORAMIC_SIZE),
        fixtures=[{**f.as_json(), "problems": []} for f in found],
    )
    assert sorted(c.pk for c in again) == sorted(panoramic.crops.values_list("pk", flat=True))


def test_more_fixtures_than_the_region_limit_keep_the_best_scored(monkeypatch, settings):
    settings.RAIOX_MAX_REGIONS = 2
    found = [_fixture(s, score=score) for s, score in zip(PANORAMIC_SCREWS, (0.5, 0.9, 0.8), strict=True)]
    scripted(monkeypatch, {PANORAMIC_SIZE: found})
    panoramic = upload(film(PANORAMIC_SIZE, PANORAMIC_SCREWS))
    tasks.process_submission(panoramic.pk)
    kept = [c.crop_box for c in panoramic.crops.order_by("pk")]
    assert [b["region"] for b in kept] == [1, 2] and [b["suggested_quadrant"] for b in kept] == [4, 3]


def test_the_dentists_regions_override_the_finder(monkeypatch, client):
    asked = scripted(monkeypatch, {PANORAMIC_SIZE: [_fixture(s) for s in PANORAMIC_SCREWS]})
    picture = film(PANORAMIC_SIZE, PANORAMIC_SCREWS)
    import base64

    payload = {
        "nome": "Dra. Ana",
        "email": "ana@example.com",
        "dente": "16",
        "file": base64.b64encode(encode(picture)).decode(),
        "regions": [{"x": 100, "y": 40, "width": 200, "height": 220, "tooth": "16"}],
    }
    response = client.post("/webhook", json.dumps(payload), content_type="application/json")
    assert response.status_code == 201, response.content
    film_row = Submission.objects.get(token=response.json()["token"])
    assert tasks.process_submission(film_row.pk) == "done"
    film_row.refresh_from_db()
    assert PANORAMIC_SIZE not in asked  # the finder never looked at the film
    assert film_row.crops.count() == 1 and not film_row.matches.exists()
    child = film_row.crops.get()
    tasks.process_submission(child.pk)  # or already done, in the film's batch
    child.refresh_from_db()
    assert child.status == Status.DONE
    assert (200, 220) in asked  # the region is looked at: its best fixture is what is matched
    page = client.get(f"/r/{film_row.token}/").content.decode()
    assert "Implantes marcados na radiografia" in page and "Implantes mais parecidos" not in page


@pytest.mark.parametrize(
    ("problems", "code"),
    [(("too_small",), "too_small"), ((), "blurred")],
    ids=["fixture-too-small", "film-blurred"],
)
def test_quality_problems_tell_what_to_fix_and_are_never_alta(monkeypatch, client, catalog, problems, code):
    screw = Screw(200, 150, 60, 16)
    film_problems = () if problems else (code,)
    scripted(monkeypatch, {(400, 300): [_fixture(screw, problems=problems)]}, problems=film_problems)
    submission = upload(film((400, 300), [screw]))
    assert tasks.process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    assert submission.quality_problems == [code]
    # Even a candidate the calibration calls "alta" is capped.
    from implants.models import Implant

    implants = list(Implant.objects.order_by("pk")[:3])
    calibrated = [(0.97, "alta"), (0.02, "baixa"), (0.01, "baixa")]
    submission_record_result(
        submission_id=submission.pk,
        embedding=[0.0] * 512,
        model_id="m",
        candidates=[
            MatchCandidate(i.pk, None, s, p, band)
            for i, s, (p, band) in zip(implants, (0.99, 0.5, 0.4), calibrated, strict=True)
        ],
        fixtures=submission.fixtures,
        quality_problems=submission.quality_problems,
    )
    page = client.get(f"/r/{submission.token}/").content.decode()
    assert str(QUALITY_MESSAGES[code]) in page
    assert "Confiança alta" not in page and 'data-testid="quality"' in page
    status = _status(client, submission)
    assert status["quality_problems"] == [{"code": code, "message": str(QUALITY_MESSAGES[code])}]
    # The same submission without the problem would be "alta": the cap is what changed it.
    Submission.objects.filter(pk=submission.pk).update(quality_problems=[])
    assert "Confiança alta" in client.get(f"/r/{submission.token}/").content.decode()


def test_an_uncertain_apex_compares_both_orientations(monkeypatch, client, embedded_catalog):
    screw = Screw(200, 150, 180, 50)
    scripted(monkeypatch, {(400, 300): [_fixture(screw, apex="unknown")]})
    calls: list[int] = []
    from matching.embedder import get_embedder

    embedder = get_embedder()
    original = embedder.embed_images

    def counting(items):
        calls.append(len(items))
        return original(items)

    monkeypatch.setattr(embedder, "embed_images", counting)
    submission = upload(film((400, 300), [screw]))
    assert tasks.process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    assert calls == [2] and submission.both_orientations and submission.matches.count() == 3
    page = client.get(f"/r/{submission.token}/").content.decode()
    assert "A orientação do implante não pôde ser determinada; comparamos as duas." in page


def test_every_quality_code_has_its_message_and_the_quadrants_follow_the_patient():
    assert set(QUALITY_MESSAGES) == set(finder.QUALITY_CODES)
    width, height = 1200, 500
    assert suggested_quadrant((100, 50, 150, 200), width, height) == 1  # film's upper left
    assert suggested_quadrant((1000, 50, 1050, 200), width, height) == 2
    assert suggested_quadrant((1000, 300, 1050, 450), width, height) == 3
    assert suggested_quadrant((100, 300, 150, 450), width, height) == 4
    assert suggested_quadrant((100, 50, 150, 200), 400, 300) is None  # a periapical does not tell
    x, y, w, h = region_box((0, 0, 10, 10), 400, 300)
    assert (x, y) == (0, 0) and min(w, h) >= 32 and x + w <= 400 and y + h <= 300


@pytest.fixture
def count_decodes(monkeypatch):
    from matching.embedder import get_embedder

    embedder = get_embedder()
    calls = {"decoded": 0, "embedded": 0}
    load, embed = embedder.load_image, embedder.embed_images

    def counting_load(data):
        calls["decoded"] += 1
        return load(data)

    def counting_embed(images):
        calls["embedded"] += len(images)
        return embed(images)

    monkeypatch.setattr(embedder, "load_image", counting_load)
    monkeypatch.setattr(embedder, "embed_images", counting_embed)
    return calls


def _answer(submission: Submission) -> tuple:
    submission.refresh_from_db()
    matches = list(submission.matches.order_by("rank").values_list("implant_id", "reference_image_id", "similarity"))
    return submission.status, submission.fixtures, submission.quality_problems, submission.both_orientations, matches


def test_an_identical_film_takes_the_earlier_finding_without_being_decoded_or_read(
    monkeypatch, client, embedded_catalog, count_decodes
):
    screw = Screw(200, 150, 180, 50)
    code = finder.QUALITY_CODES[0]
    asked = scripted(monkeypatch, {(400, 300): [_fixture(screw, apex="unknown")]}, problems=[code])
    picture = encode(film((400, 300), [screw]))
    fresh = upload(film((400, 300), [screw]))
    assert tasks.process_submission(fresh.pk) == "done"
    assert len(asked) == 1 and count_decodes == {"decoded": 1, "embedded": 2}
    again, _ = submission_create(intake=IntakeRecord(source="upload", image_bytes=picture, filename="de-novo.png"))
    assert again.content_hash == fresh.content_hash
    assert tasks.process_submission(again.pk) == "done"
    # Neither the decoder, nor the finder, nor the model ran for the identical film ...
    assert len(asked) == 1 and count_decodes == {"decoded": 1, "embedded": 2}
    # ... and its answer is the fresh run's: fixtures, quality problems, both orientations, matches.
    answer = _answer(again)
    assert answer == _answer(fresh)
    assert answer[0] == Status.DONE and answer[2] == [code] and answer[3] is True and len(answer[4]) == 3
    page = client.get(f"/r/{again.token}/").content.decode()
    assert "A orientação do implante não pôde ser determinada; comparamos as duas." in page
    assert _status(client, again)["fixtures"] == _status(client, fresh)["fixtures"]


def test_a_new_preprocessing_version_reads_an_identical_film_again(monkeypatch, embedded_catalog, count_decodes):
    from matching import canonical

    screw = Screw(200, 150, 180, 50)
    asked = scripted(monkeypatch, {(400, 300): [_fixture(screw)]})
    first = upload(film((400, 300), [screw]))
    assert tasks.process_submission(first.pk) == "done"
    monkeypatch.setattr(canonical, "PREPROCESS_VERSION", "fx-next")  # the finder or the view changed
    again = upload(film((400, 300), [screw]))
    assert again.content_hash == first.content_hash
    assert tasks.process_submission(again.pk) == "done"
    first.refresh_from_db()
    again.refresh_from_db()
    assert len(asked) == 2 and count_decodes["decoded"] == 2 and count_decodes["embedded"] == 2
    assert again.embedding_model.endswith("+fx-next") and again.fixtures == first.fixtures


def test_identical_films_of_one_batch_are_read_once(monkeypatch, embedded_catalog, count_decodes):
    screw = Screw(200, 150, 180, 50)
    asked = scripted(monkeypatch, {(400, 300): [_fixture(screw, apex="unknown")]})
    films = [upload(film((400, 300), [screw])) for _ in range(3)]
    assert tasks.process_submission(films[0].pk) == "done"  # its batch claims the two waiting
    assert [tasks.process_submission(f.pk) for f in films[1:]] == ["already done", "already done"]
    assert len(asked) == 1 and count_decodes == {"decoded": 1, "embedded": 2}
    answers = [_answer(f) for f in films]
    assert answers[0][3] is True and len(answers[0][4]) == 3
    assert answers[1] == answers[0] and answers[2] == answers[0]
