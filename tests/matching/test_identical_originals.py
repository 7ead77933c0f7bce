"""Bytes sent again are not decoded again (issue 20, follow-up): the worker finds a submission
prepared from the same bytes as sent (``Submission.original_hash``) and stores a copy of its
normalised PNG and pixel hash under the new submission's own key; different bytes are decoded;
each submission owns its file, so deleting one leaves the other's picture."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from matching import tasks
from submissions.models import Status, Submission
from submissions.services import IntakeRecord, submission_create, submission_delete
from submissions.services import remote as remote_services
from testkit.images import xray_png

pytestmark = pytest.mark.django_db


def _send(data: bytes, filename: str = "rx.png") -> Submission:
    submission, created = submission_create(intake=IntakeRecord(source="upload", image_bytes=data, filename=filename))
    assert created
    return submission


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """The length of every buffer the worker's decoder is given."""
    calls: list[int] = []
    decode = remote_services.decode_image

    def counting(data, **kwargs):
        calls.append(len(data))
        return decode(data, **kwargs)

    monkeypatch.setattr(remote_services, "decode_image", counting)
    return calls


def _answer(submission: Submission) -> tuple:
    submission.refresh_from_db()
    matches = list(submission.matches.order_by("rank").values_list("implant_id", "reference_image_id", "similarity"))
    return submission.status, submission.content_hash, submission.fixtures, submission.quality_problems, matches


def test_bytes_sent_again_are_not_decoded_and_get_the_same_answer(embedded_catalog, decodes):
    data = xray_png(70)
    first = _send(data)
    assert tasks.process_submission(first.pk) == "done"
    assert len(decodes) == 1
    again = _send(data, filename="de-novo.png")
    assert tasks.process_submission(again.pk) == "done"
    assert len(decodes) == 1  # the copy: not decoded again
    answer = _answer(again)
    assert answer == _answer(first) and answer[0] == Status.DONE and len(answer[4]) == 3
    first.refresh_from_db()
    assert again.original_hash == first.original_hash == remote_services.original_hash(data)
    # Its own file, with the same normalised pixels; the original it was sent as is gone.
    assert again.image.name != first.image.name
    with default_storage.open(again.image.name, "rb") as a, default_storage.open(first.image.name, "rb") as b:
        assert a.read() == b.read()


def test_identical_bytes_in_one_batch_are_decoded_once(embedded_catalog, decodes):
    data = xray_png(71)
    sent = [_send(data, filename=f"rx{i}.png") for i in range(3)]
    assert tasks.process_submission(sent[0].pk) == "done"  # its batch claims the two waiting
    assert len(decodes) == 1
    answers = [_answer(s) for s in sent]
    assert answers[0][0] == Status.DONE and answers[1] == answers[0] and answers[2] == answers[0]
    assert len({s.image.name for s in sent}) == 3


def test_different_bytes_are_decoded(embedded_catalog, decodes):
    first, other = _send(xray_png(72)), _send(xray_png(73))
    assert tasks.process_submission(first.pk) == "done"
    assert tasks.process_submission(other.pk) in ("done", "already done")
    assert len(decodes) == 2
    first.refresh_from_db()
    other.refresh_from_db()
    assert first.original_hash != other.original_hash and first.status == other.status == Status.DONE


def test_deleting_the_first_leaves_the_copys_picture(embedded_catalog, decodes, django_capture_on_commit_callbacks):
    data = xray_png(74)
    first = _send(data)
    assert tasks.process_submission(first.pk) == "done"
    again = _send(data)
    assert tasks.process_submission(again.pk) == "done"
    assert len(decodes) == 1
    first.refresh_from_db()
    again.refresh_from_db()
    first_name = first.image.name
    with django_capture_on_commit_callbacks(execute=True):  # the files go when the deletion commits
        submission_delete(submission=first)
    assert not default_storage.exists(first_name)
    assert default_storage.exists(again.image.name)
    with default_storage.open(again.image.name, "rb") as fh:
        assert fh.read()  # still readable: the page and a re-embedding read it
    # And a third sending of those bytes still copies (from the survivor) without decoding.
    third = _send(data)
    assert tasks.process_submission(third.pk) == "done"
    assert len(decodes) == 1 and _answer(third)[1] == again.content_hash


def test_a_twin_whose_file_went_is_decoded(embedded_catalog, decodes):
    data = xray_png(75)
    first = _send(data)
    assert tasks.process_submission(first.pk) == "done"
    first.refresh_from_db()
    default_storage.delete(first.image.name)  # gone behind the row's back
    again = _send(data)
    assert tasks.process_submission(again.pk) == "done"
    assert len(decodes) == 2 and _answer(again)[1] == first.content_hash
