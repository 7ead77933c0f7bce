"""Look-alike warnings on the result page: a catalogue group among the candidates shown, or a tie
between the first two, is said out loud with the features that tell them apart, and never "alta"."""

from __future__ import annotations

import pytest
from django.test import Client

from implants.models import Implant, LookalikeGroup
from submissions import services
from submissions.results.page import submission_result_page
from submissions.serializers import match_result_answer
from submissions.services import MatchCandidate
from testkit.images import xray_file

pytestmark = pytest.mark.django_db


def _done(implants: list[Implant], similarities: list[float]):
    """A result whose calibrated probability makes the first candidate "alta" on its own."""
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="upload", image_bytes=xray_file(), dentist_email="a@example.com")
    )
    calibrated = [(0.95, "alta"), (0.03, "baixa"), (0.02, "baixa")]
    return services.submission_record_result(
        submission_id=submission.pk,
        embedding=[0.0] * 512,
        model_id="m",
        candidates=[
            MatchCandidate(i.pk, None, s, p, band)
            for i, s, (p, band) in zip(implants, similarities, calibrated, strict=True)
        ],
    )


def _pair_that_differs() -> tuple[Implant, Implant, Implant]:
    implants = list(Implant.objects.select_related("manufacturer").order_by("id"))
    a = implants[0]
    b = next(i for i in implants[1:] if i.connection != a.connection)
    c = next(i for i in implants if i not in (a, b))
    return a, b, c


def test_a_lookalike_group_among_the_candidates_warns_lists_differences_and_is_never_alta(catalog):
    a, b, c = _pair_that_differs()
    group = LookalikeGroup.objects.create(name="Cônicos HE", notes="Olhe o colar.")
    group.implants.set([a, b])
    submission = _done([a, c, b], [0.97, 0.80, 0.78])  # a clear winner by the figures alone

    view = submission_result_page(submission)
    assert view.lookalike is not None and view.lookalike.reason == "group"
    assert view.lookalike.implants == [str(a), str(b)]
    connection = next(d for d in view.lookalike.differences if d.label == "conexão")
    assert connection.values == [(str(a), a.get_connection_display()), (str(b), b.get_connection_display())]
    assert all(card.confidence.level != "alta" for card in view.cards)

    page = Client().get(f"/r/{submission.token}/").content.decode()
    assert 'data-testid="lookalike"' in page and "Estes implantes são muito parecidos" in page
    assert "Olhe o colar." in page and "Conexão:" in page
    assert "Confiança alta" not in page and 'data-testid="probability">95&nbsp;%' in page
    # The API answer follows the same rule: the stored "alta" is carried as "media".
    answer, _status = match_result_answer(submission)
    assert [(i["probability"], i["band"]) for i in answer["implants"]] == [
        (0.95, "media"),
        (0.03, "baixa"),
        (0.02, "baixa"),
    ]


def test_without_a_group_the_same_result_is_alta(catalog):
    a, b, c = _pair_that_differs()
    view = submission_result_page(_done([a, c, b], [0.97, 0.80, 0.78]))
    assert view.lookalike is None and view.cards[0].confidence.level == "alta"


def test_a_tie_between_the_first_two_warns(catalog, settings):
    settings.RAIOX_CONFIDENCE_MEDIUM_MARGIN = 0.01
    a, b, c = _pair_that_differs()
    view = submission_result_page(_done([a, b, c], [0.93, 0.925, 0.70]))
    assert view.lookalike is not None and view.lookalike.reason == "tie"
    assert view.lookalike.implants == [str(a), str(b)] and view.lookalike.differences
    assert all(card.confidence.level != "alta" for card in view.cards)
    page = Client().get(f"/r/{view.submission.token}/").content.decode()
    assert "Empate entre" in page


def test_one_group_member_alone_is_no_warning(catalog):
    a, b, c = _pair_that_differs()
    LookalikeGroup.objects.create(name="g").implants.set(
        [a, Implant.objects.exclude(pk__in=[a.pk, b.pk, c.pk]).first()]
    )
    view = submission_result_page(_done([a, b, c], [0.97, 0.80, 0.78]))
    assert view.lookalike is None
