"""Retention (LGPD) and deletion (issue 13): nothing deleted old submissions, their files and crops,
task rows or thank-you sessions; deleting a submission in the admin left its X-ray in the bucket."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.utils import timezone
from django_q.models import Task

from implants.models import ReferenceImage
from implants.services import implant_get_or_create, manufacturer_get_or_create
from submissions import services
from submissions.models import Submission
from testkit.images import plain_image
from tests.builders.storage import storage_keys


def _submission(seed: int, *, days_old: int = 0, parent: Submission | None = None) -> Submission:
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(
            source="upload",
            patient="João da Silva",
            image_bytes=plain_image(value=seed),
            filename="x.png",
            parent_id=parent.pk if parent else None,
        )
    )
    services.submission_prepare_image(submission_id=submission.pk)  # the worker's decode: a second file
    if days_old:
        Submission.objects.filter(pk=submission.pk).update(received_at=timezone.now() - dt.timedelta(days=days_old))
    return Submission.objects.get(pk=submission.pk)


def _old_task_row(days_old: int) -> None:
    stopped = timezone.now() - dt.timedelta(days=days_old)
    Task.objects.create(
        id=f"{days_old:032d}",
        name=f"task-{days_old}",
        func="matching.tasks.process_submission",
        args=[1],
        started=stopped,
        stopped=stopped,
        success=False,
        result="falhou",
    )


def _retention_run(settings, django_capture_on_commit_callbacks) -> dict:
    settings.RAIOX_RETENTION_DAYS = 30
    implant, _ = implant_get_or_create(
        manufacturer=manufacturer_get_or_create(name="Neodent")[0],
        name="Titamax CM",
        connection="morse_taper",
        body_shape="parallel",
        thread_shape="v",
    )
    with django_capture_on_commit_callbacks(execute=True):
        old = _submission(10, days_old=40)
        crop = _submission(20, parent=old)  # a crop made today from an old X-ray goes with it
        confirmed = _submission(30, days_old=40)
        services.submission_confirm(submission=confirmed, implant=implant, user=None)
        recent = _submission(40, days_old=5)
    reference = ReferenceImage.objects.get()
    _old_task_row(40)
    _old_task_row(1)
    expired = SessionStore()
    expired["jotform"] = True
    expired.set_expiry(-1)
    expired.save()
    caches[settings.RAIOX_SHARED_CACHE].set("thanks:old", "x", timeout=-1)
    caches[settings.RAIOX_SHARED_CACHE].set("thanks:new", "y", timeout=600)
    kept_keys = sorted([recent.image.name, reference.image.name])
    assert len(storage_keys()) == 5

    with django_capture_on_commit_callbacks(execute=True):
        report = services.retention_apply()

    assert (report.submissions, report.tasks, report.sessions, report.cache_entries) == (3, 1, 1, 1)
    assert list(Submission.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not Submission.objects.filter(pk__in=[old.pk, crop.pk, confirmed.pk]).exists()
    assert storage_keys() == kept_keys  # not one file of a deleted submission left behind
    # The confirmed case stays as a reference image: pixels only, no link to the patient.
    assert ReferenceImage.objects.filter(pk=reference.pk, implant=implant).exists()
    assert Task.objects.count() == 1
    assert not Session.objects.filter(session_key=expired.session_key).exists()
    assert caches[settings.RAIOX_SHARED_CACHE].get("thanks:new") == "y"
    return {"recent": recent}


@pytest.mark.django_db
def test_retention_leaves_no_file_behind_locally(settings, django_capture_on_commit_callbacks):
    _retention_run(settings, django_capture_on_commit_callbacks)


@pytest.mark.django_db
def test_retention_leaves_no_file_behind_on_s3(settings, s3_storage, django_capture_on_commit_callbacks):
    _retention_run(settings, django_capture_on_commit_callbacks)
    listed = s3_storage["client"].list_objects_v2(Bucket=s3_storage["bucket"]).get("Contents", [])
    assert len(listed) == 2


@pytest.fixture
def superuser_client(client, db):
    user = User.objects.create_superuser("chefe", "chefe@example.com", "x-pass-123")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_deleting_a_submission_in_the_admin_deletes_its_files(superuser_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        one, two, three = (_submission(seed) for seed in (50, 60, 70))
        crop = _submission(80, parent=one)
    assert len(storage_keys()) == 4

    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(f"/admin/submissions/submission/{one.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Submission.objects.filter(pk__in=[one.pk, crop.pk]).exists()
    assert sorted(storage_keys()) == sorted([two.image.name, three.image.name])

    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(
            "/admin/submissions/submission/",
            {"action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert not Submission.objects.exists()
    assert storage_keys() == []
