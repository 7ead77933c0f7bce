"""The fixture finder on generated films (implants.synthetic_films): no database needed."""

from __future__ import annotations

import json
from io import StringIO

import cv2
import numpy as np
import pytest
from django.core.management import call_command

from implants import synthetic_films as films
from matching.canonical import canonical_view
from matching.fixtures import (
    APEX_DOWN,
    APEX_UP,
    QUALITY_BLURRED,
    QUALITY_TOO_SMALL,
    TOO_SMALL_PX,
    as_grey,
    find_fixtures,
)
from testkit.boxes import decoded, iou, match

SEED = 11  # neither the tuning seed (1) nor the bench's (2)


def _item(n: int):
    return films.catalog_items()[n]


def test_a_film_without_fixtures_gives_none():
    film = films.make_film("empty", 0, seed=SEED)
    assert film.fixtures == []
    report = find_fixtures(film.image)
    assert report.fixtures == []
    assert (report.width, report.height) == (film.image.shape[1], film.image.shape[0])


def test_one_fixture_found_with_its_box_axis_and_apex():
    film = films.make_film("lower", 3, seed=SEED)
    report = find_fixtures(film.image)
    assert len(report.fixtures) == 1
    found, truth = report.fixtures[0], film.fixtures[0]
    assert iou(found.box, truth["box"]) >= 0.5
    assert found.apex == APEX_DOWN == truth["apex"]
    assert abs(found.axis_deg - truth["axis_deg"]) < 5
    assert 0 < found.score <= 1 and found.breadth > 0 and found.length > found.breadth


def test_three_fixtures_on_one_film():
    # Seed 14: the finder's panoramic recall is below its goal (bench.fixtures), this film is one it reads.
    rng = np.random.default_rng(14)
    image, truth = films.panoramic(rng, [_item(1), _item(9), _item(24)])
    report = find_fixtures(image)
    assert len(truth) == 3
    assert len(match(report.fixtures, truth)) == 3
    assert len(report.fixtures) == 3
    # Numbered left to right, as the dentist reads them.
    xs = [f.centre[0] for f in report.numbered()]
    assert xs == sorted(xs)


def test_an_upper_jaw_fixture_points_up_and_is_framed_apex_down():
    rng = np.random.default_rng(SEED)
    lower, lower_truth = films.periapical(rng, _item(5), edge=False)
    upper, upper_truth = films._flip(lower, lower_truth)
    found_lower = find_fixtures(lower).fixtures
    found_upper = find_fixtures(upper).fixtures
    assert len(found_lower) == len(found_upper) == 1
    assert found_upper[0].apex == APEX_UP == upper_truth[0]["apex"]
    assert found_lower[0].apex == APEX_DOWN

    def grey(view) -> np.ndarray:
        return np.asarray(view.image.convert("L"), dtype=np.float32).ravel()

    # The upper film is the lower one turned over, so its canonical (apex-down) view is the lower
    # view's mirror image; framed apex up it would not be.
    reference = np.asarray(canonical_view(lower, found_lower[0]).image.convert("L"), dtype=np.float32)[:, ::-1]
    reference = reference.ravel()
    framed = grey(canonical_view(upper, found_upper[0]))
    turned = grey(canonical_view(upper, found_upper[0], turn=True))
    same = np.corrcoef(reference, framed)[0, 1]
    assert same > 0.9
    assert same > np.corrcoef(reference, turned)[0, 1] + 0.15


def test_a_crowned_fixtures_box_excludes_the_crown():
    film = films.make_film("crown", 0, seed=SEED)  # an even index: lower jaw, the crown above
    truth = film.fixtures[0]
    assert truth["apex"] == APEX_DOWN
    report = find_fixtures(film.image)
    assert len(report.fixtures) == 1
    box = report.fixtures[0].box
    assert iou(box, truth["box"]) >= 0.5
    # The crown sits on the screw's top: the box may not reach into it (tolerance: 8 % of the screw).
    tolerance = 0.08 * (truth["box"][3] - truth["box"][1])
    assert box[1] >= truth["box"][1] - tolerance


@pytest.mark.parametrize(
    ("index", "crowned"),
    [(7, 1), (14, 1)],  # an upper fixture with its crown below, a lower one with its crown above
)
def test_a_crowned_fixtures_box_excludes_the_crown_on_a_panoramic(index, crowned):
    # A crown's cervical part, widening towards the crown, and an abutment a little narrower than
    # the screw once counted as screw rows: the box reached 30 % of the screw into the crown.
    film = films.make_film("panoramic", index, seed=SEED)
    truth = film.fixtures[crowned]
    report = find_fixtures(decoded(film.encode()))
    pairs = {j: i for i, j, _ in match(report.fixtures, film.fixtures)}
    assert crowned in pairs, report.fixtures
    box = report.fixtures[pairs[crowned]].box
    assert iou(box, truth["box"]) >= 0.75
    tolerance = 0.08 * (truth["box"][3] - truth["box"][1])
    if truth["apex"] == APEX_DOWN:  # the crown above the screw's top
        assert box[1] >= truth["box"][1] - tolerance
    else:  # the crown below the screw's bottom
        assert truth["apex"] == APEX_UP
        assert box[3] <= truth["box"][3] + tolerance


def test_a_blurred_film_is_marked_blurred():
    film = films.make_film("lower", 4, seed=SEED)
    sharp = find_fixtures(film.image)
    assert QUALITY_BLURRED not in sharp.problems
    blurred = find_fixtures(cv2.GaussianBlur(film.image, (0, 0), 5))
    assert QUALITY_BLURRED in blurred.problems
    assert blurred.quality["sharpness"] < sharp.quality["sharpness"]


def test_a_tiny_fixture_is_marked_too_small():
    rng = np.random.default_rng(SEED)
    image, truth = films.periapical(rng, _item(2), width=700, fixture_width=14, edge=False)
    report = find_fixtures(image)
    pairs = match(report.fixtures, truth, threshold=0.3)
    assert pairs, report.fixtures
    fixture = report.fixtures[pairs[0][0]]
    assert fixture.breadth < TOO_SMALL_PX
    assert QUALITY_TOO_SMALL in fixture.problems and QUALITY_TOO_SMALL in report.problems


def test_phone_photo_is_read_through_the_light_box():
    film = films.make_film("phone", 1, seed=SEED)
    report = find_fixtures(decoded(film.encode()))  # the JPEG, as sent
    assert film.image.ndim == 3
    assert match(report.fixtures, film.fixtures), (report.fixtures, film.fixtures)


def test_find_fixtures_command_json(tmp_path):
    lower = films.make_film("lower", 3, seed=SEED)
    (tmp_path / "a.png").write_bytes(lower.encode())
    (tmp_path / "empty.png").write_bytes(films.make_film("empty", 0, seed=SEED).encode())
    (tmp_path / "broken.png").write_bytes(b"not an image")
    out = StringIO()
    call_command("find_fixtures", str(tmp_path), "--json", stdout=out)
    results = {r["file"]: r for r in json.loads(out.getvalue())["results"]}
    assert set(results) == {"a.png", "empty.png", "broken.png"}
    assert "error" in results["broken.png"]
    assert results["empty.png"]["fixtures"] == []
    (fixture,) = results["a.png"]["fixtures"]
    assert set(fixture) == {"box", "axis_deg", "apex", "score"}
    assert iou(fixture["box"], lower.fixtures[0]["box"]) >= 0.5
    assert set(results["a.png"]["quality"]) >= {"sharpness", "contrast", "problems"}
    # A file given by path prints as given; the readable table too.
    single = StringIO()
    call_command("find_fixtures", str(tmp_path / "a.png"), "--json", stdout=single)
    assert json.loads(single.getvalue())["results"][0]["file"] == str(tmp_path / "a.png")
    table = StringIO()
    call_command("find_fixtures", str(tmp_path / "a.png"), stdout=table)
    assert "1 implante" in table.getvalue()


@pytest.mark.parametrize("condition", ["lower", "upper"])
def test_generated_truth_is_consistent(condition):
    film = films.make_film(condition, 1, seed=SEED)
    (truth,) = film.fixtures
    x0, y0, x1, y1 = truth["box"]
    assert 0 <= x0 < x1 <= film.image.shape[1] and 0 <= y0 < y1 <= film.image.shape[0]
    assert truth["apex"] == ("down" if condition == "lower" else "up")
    assert -20.5 <= truth["axis_deg"] <= 20.5
    # The box holds the brightest (metal) pixels of the film's fixture.
    assert as_grey(film.image)[y0:y1, x0:x1].max() >= 200


@pytest.mark.parametrize("index", range(6))
def test_empty_films_give_no_fixture(index):
    # Teeth, metal crowns, bridges, the film's bright edge, panoramics without implants (every third).
    film = films.make_film("empty", index, seed=SEED)
    assert find_fixtures(film.image).fixtures == []


def test_apex_votes_follow_the_connection_and_are_unknown_without_cues():
    from matching.fixtures import APEX_MARGIN, _apex_vote

    side, top, bottom, breadth = 120, 10, 109, 30
    widths = np.zeros(side, np.float32)
    widths[top : bottom + 1] = breadth
    shade = np.full((side, side), 60, np.uint8)
    centre = side // 2
    shade[top : bottom + 1, centre - breadth // 2 : centre + breadth // 2] = 240  # a plain metal rod
    screw_rows = widths[top : bottom + 1]
    plain, _ = _apex_vote(widths, shade, side, top, bottom, breadth, screw_rows, 60, 250)
    assert abs(plain) < APEX_MARGIN  # no cue: the finder must say "unknown"
    channel = shade.copy()
    channel[top : top + 35, centre - 4 : centre + 5] = 150  # the connection at the top end
    vote, cues = _apex_vote(widths, channel, side, top, bottom, breadth, screw_rows, 60, 250)
    assert vote >= APEX_MARGIN and cues["connection"] > 0  # the apex is the bottom end
    flipped, _ = _apex_vote(
        widths, channel[::-1].copy(), side, side - 1 - bottom, side - 1 - top, breadth, screw_rows, 60, 250
    )
    assert flipped <= -APEX_MARGIN
