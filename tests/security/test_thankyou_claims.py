"""Jotform's thank-you redirect takes a claim only for a submission that exists (issue 22): a
guesser who asks for ids ahead of their submissions holds none of them, so when the submission
arrives the guesser is not the one redirected to its result."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client

from submissions.models import Submission
from submissions.results.links import result_path
from tests.builders.submissions import jotform_submission
from tests.submissions.test_pages import THANKS

pytestmark = pytest.mark.django_db

SID = "5801234567890123999"


def test_asking_for_future_ids_claims_none_of_them():
    guesser = Client()
    future = [str(int(SID) + n) for n in range(5)]
    for sid in future:
        assert guesser.get(THANKS, {"sid": sid}).status_code == 200
    shared = caches[settings.RAIOX_SHARED_CACHE]
    assert all(shared.get(f"thankyou-claim:{sid}") is None for sid in future)
    assert not Submission.objects.exists()


def test_the_guesser_who_asked_first_is_not_redirected_when_the_submission_arrives():
    guesser, dentist = Client(), Client()
    guesser.get(THANKS, {"sid": SID})  # before the webhook
    dentist.get(THANKS, {"sid": SID})  # the dentist's browser waits too
    submission = jotform_submission(SID)
    assert dentist.get(THANKS, {"sid": SID})["Location"] == result_path(submission)
    late = guesser.get(THANKS, {"sid": SID})
    assert late.status_code == 200 and str(submission.token) not in late.content.decode()
