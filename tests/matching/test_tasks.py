"""process_submission / embed_reference_image / reembed against the real model and database."""

from __future__ import annotations

import io
import socket

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from implants.models import Implant, ReferenceImage
from matching import tasks, workers
from matching.embedder import get_embedder
from matching.state import model_state
from submissions.models import DentistFeedback, Match, Status, Submission, Verdict
from submissions.results.queries import no_convincing_match
from submissions.services import IntakeRecord, submission_create, submission_reprocess
from testkit.images import xray_png

pytestmark = pytest.mark.django_db


def new_submission(data: bytes) -> Submission:
    submission, created = submission_create(intake=IntakeRecord(source="upload", image_bytes=data, filename="x.png"))
    assert created
    return submission


@pytest.fixture
def count_model_runs(monkeypatch):
    embedder = get_embedder()
    calls = {"images": 0}
    original = embedder.embed_images

    def counting(images):
        calls["images"] += len(images)
        return original(images)

    monkeypatch.setattr(embedder, "embed_images", counting)
    return calls


def test_processing_twice_leaves_one_set_of_matches(embedded_catalog):
    submission = new_submission(xray_png(11))
    assert tasks.process_submission(submission.pk) == "done"
    first = list(Match.objects.filter(submission=submission).values_list("implant_id", "rank", "similarity"))
    assert tasks.process_submission(submission.pk) == "already done"
    submission.refresh_from_db()
    assert submission.status == Status.DONE and submission.embedding_model == get_embedder().model_id
    assert len(first) == 3
    assert list(Match.objects.filter(submission=submission).values_list("implant_id", "rank", "similarity")) == first
    # Re-queued by staff (status back to received): still exactly one set.
    submission_reprocess(submission_id=submission.pk)
    assert tasks.process_submission(submission.pk) == "done"
    assert Match.objects.filter(submission=submission).count() == 3


def test_a_poison_image_fails_alone_with_a_reason(embedded_catalog):
    poison = new_submission(xray_png(12))
    # Valid PNG header, broken body, written straight into storage (the intake would refuse it).
    path = default_storage.path(poison.image.name)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"garbage" * 50)
    healthy = new_submission(xray_png(13))
    assert tasks.process_submission(poison.pk) == "failed"
    # The healthy one was waiting too, so the poison's task processed it in its batch: its own
    # task finds it done.
    assert tasks.process_submission(healthy.pk) == "already done"
    poison.refresh_from_db()
    healthy.refresh_from_db()
    assert poison.status == Status.FAILED
    assert "Não foi possível ler a imagem" in poison.failure_reason
    assert not poison.matches.exists()
    assert healthy.status == Status.DONE and healthy.matches.count() == 3


def test_identical_content_reuses_the_embedding_without_running_the_model(embedded_catalog, count_model_runs):
    first = new_submission(xray_png(14))
    tasks.process_submission(first.pk)
    assert count_model_runs["images"] == 1
    second = new_submission(xray_png(14))  # the same picture sent again
    assert second.content_hash == first.content_hash
    tasks.process_submission(second.pk)
    assert count_model_runs["images"] == 1
    first.refresh_from_db()
    second.refresh_from_db()
    np.testing.assert_allclose(second.embedding, first.embedding)
    assert list(second.matches.values_list("implant_id", flat=True)) == list(
        first.matches.values_list("implant_id", flat=True)
    )


def test_reference_image_with_identical_content_reuses_the_embedding(embedded_catalog, count_model_runs):
    original = ReferenceImage.objects.first()
    copy = ReferenceImage.objects.create(
        implant=original.implant, image=original.image.name, content_hash=original.content_hash
    )
    tasks.embed_reference_image(copy.pk)
    copy.refresh_from_db()
    assert count_model_runs["images"] == 0
    np.testing.assert_allclose(copy.embedding, original.embedding)


def test_refine_reranks_with_the_stored_embedding_under_filters_and_rejections(embedded_catalog, count_model_runs):
    submission = new_submission(xray_png(15))
    tasks.process_submission(submission.pk)
    top = submission.matches.order_by("rank").first().implant
    wanted_connection = top.connection
    DentistFeedback.objects.create(submission=submission, implant=top, verdict=Verdict.NOT_THIS)
    Submission.objects.filter(pk=submission.pk).update(refine_filters={"connection": wanted_connection, "bogus": "x"})
    submission_reprocess(submission_id=submission.pk)
    assert tasks.process_submission(submission.pk) == "done"
    assert count_model_runs["images"] == 1  # re-ranked, not re-embedded
    implants = [m.implant for m in submission.matches.select_related("implant").order_by("rank")]
    assert top not in implants
    assert implants and all(i.connection == wanted_connection for i in implants)
    eligible = Implant.objects.filter(connection=wanted_connection, is_active=True).exclude(pk=top.pk).count()
    assert len(implants) == min(3, eligible)


def test_relevance_cut_off_is_derived_from_the_setting(embedded_catalog, settings):
    submission = new_submission(xray_png(16))
    tasks.process_submission(submission.pk)
    submission.refresh_from_db()
    best = submission.matches.order_by("rank").first().similarity
    settings.RAIOX_MIN_SIMILARITY = best + 0.001
    assert no_convincing_match(submission)
    settings.RAIOX_MIN_SIMILARITY = best - 0.001
    assert not no_convincing_match(submission)


def test_the_worker_records_its_model_for_web_pages(embedded_catalog, monkeypatch):
    monkeypatch.setattr(workers, "_state_recorded_at", None)  # as in a freshly started worker process
    tasks.process_submission(new_submission(xray_png(17)).pk)
    state = model_state()
    assert state.model_id is not None and state.untrained and "untrained" in state.model_id
    assert state.model_id == get_embedder().model_id and state.device == "cpu" and state.alive


def test_reembed_stale_only_touches_rows_of_another_model(embedded_catalog):
    stale = ReferenceImage.objects.first()
    ReferenceImage.objects.filter(pk=stale.pk).update(embedding_model="old/model")
    before = dict(ReferenceImage.objects.values_list("pk", "embedded_at"))
    out = io.StringIO()
    call_command("reembed", "--stale", stdout=out, stderr=io.StringIO())
    after = dict(ReferenceImage.objects.values_list("pk", "embedded_at"))
    assert "Reference images embedded: 1" in out.getvalue()
    assert [pk for pk in after if after[pk] != before[pk]] == [stale.pk]
    stale.refresh_from_db()
    assert stale.embedding_model == get_embedder().model_id
    # Nothing left: a second run (or a resumed one) has nothing to do.
    out = io.StringIO()
    call_command("reembed", stdout=out, stderr=io.StringIO())
    assert "Reference images embedded: 0" in out.getvalue()


def test_a_confirmed_xray_becomes_a_reference_whose_embedding_is_reused(embedded_catalog, count_model_runs):
    """Submissions and reference images share one content hash (of the pixels), so confirming an
    X-ray as a reference image does not run the model on it again."""
    from submissions.services import submission_confirm

    submission = new_submission(xray_png(21))
    tasks.process_submission(submission.pk)
    assert count_model_runs["images"] == 1
    implant = submission.matches.order_by("rank").first().implant
    submission.refresh_from_db()
    confirmed = submission_confirm(submission=submission, implant=implant, user=None)
    reference = confirmed.confirmed_reference_image
    assert reference.content_hash == submission.content_hash
    tasks.embed_reference_image(reference.pk)
    reference.refresh_from_db()
    assert count_model_runs["images"] == 1
    np.testing.assert_allclose(reference.embedding, submission.embedding)


def test_storage_unreachable_is_retried_then_reported_on_the_last_attempt(s3_storage, embedded_catalog, settings):
    """An outage of the bucket while the worker reads the X-ray: the task raises (django-q delivers
    it again) until the last attempt, which marks the submission failed with a reason."""
    submission = new_submission(xray_png(31))
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()  # nothing listens there any more: connections are refused, as in an outage
    default = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], "endpoint_url": f"http://127.0.0.1:{port}"}},
    }
    with pytest.raises(Exception):  # noqa: B017 - whatever botocore raises, the task must not swallow it
        tasks.process_submission(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Status.PROCESSING and submission.attempts == 1

    Submission.objects.filter(pk=submission.pk).update(attempts=settings.Q_CLUSTER["max_attempts"] - 1)
    assert tasks.process_submission(submission.pk) == "failed"
    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert "problema temporário" in submission.failure_reason
    assert not submission.matches.exists()
