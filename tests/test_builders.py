"""The factories build rows the app accepts: every one saves, and a finished submission with
matches reads as the worker would have left it (what the back-office tests rely on)."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from submissions.models import Status
from tests.builders.factories import (
    ImplantFactory,
    ManufacturerFactory,
    MatchFactory,
    ReferenceImageFactory,
    ReviewRequestFactory,
    SubmissionFactory,
)

pytestmark = pytest.mark.django_db


def test_each_factory_saves_a_valid_row():
    maker = ManufacturerFactory(name="Neodent")
    assert ManufacturerFactory(name="Neodent") == maker  # by name, as the catalogue is
    implant = ImplantFactory(manufacturer=maker)
    implant.full_clean()
    reference = ReferenceImageFactory(implant=implant)
    assert default_storage.exists(reference.image.name) and reference.embedding is None
    match = MatchFactory(implant=implant)
    assert match.submission.status == Status.DONE and match.rank >= 1
    review = ReviewRequestFactory()
    assert review.submission.finished_at is not None and review.outcome == ""


def test_a_finished_submission_with_matches():
    implants = ImplantFactory.create_batch(3)
    submission = SubmissionFactory(finished=True, seconds=5.0, matches=implants)
    assert submission.status == Status.DONE
    assert submission.started_at == submission.received_at
    assert (submission.finished_at - submission.received_at).total_seconds() == 5.0
    ranked = list(submission.matches.order_by("rank").values_list("implant", "rank", "similarity"))
    assert ranked == [(implants[0].pk, 1, 0.89), (implants[1].pk, 2, 0.88), (implants[2].pk, 3, 0.87)]
    received = SubmissionFactory()
    assert received.status == Status.RECEIVED and received.finished_at is None and not received.matches.exists()
