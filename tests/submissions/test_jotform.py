"""POST /jotform: Jotform's real webhook shape and the old plain form, token, allow-lists,
exactly-once delivery, outages."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection
from django.test import Client

from implants.models import ReferenceImage
from kernel.downloads import TransientDownloadError
from matching.tasks import embed_reference_image, process_submission
from submissions import services
from submissions.models import Source, Status, Submission
from testkit.images import xray_file
from testkit.payloads import jotform_payload, plain_form, replace_part
from tests.builders.storage import storage_keys

UPLOAD_PATH = "/uploads/drsouza/231234567890123/5812345678901234567/radiografia%20panor%C3%A2mica.png"


def submission_keys() -> list[str]:
    return [key for key in storage_keys() if not key.startswith("referencia/")]


def post(client: Client, body: bytes, content_type: str, path: str = "/jotform"):
    return client.generic("POST", path, body, content_type=content_type)


@pytest.mark.django_db
def test_jotform_delivery_creates_one_submission_that_reaches_done(client, upload_host, catalog, settings):
    upload_host.serve(UPLOAD_PATH, xray_file())
    body, content_type = jotform_payload(
        upload_base=upload_host.url("/uploads/drsouza/231234567890123/5812345678901234567/")
    )

    response = post(client, body, content_type)

    assert response.status_code == 201, response.content
    answer = response.json()
    submission = Submission.objects.get()
    assert answer["token"] == str(submission.token)
    assert answer["result_url"].endswith(f"/r/{submission.token}/")
    assert submission.source == Source.JOTFORM
    assert submission.external_id == "5812345678901234567"
    assert submission.dentist_name == "Ana Souza"
    assert submission.dentist_email == "ana.souza@example.com"
    # The answer contains ": " and ", " — read from rawRequest, never from `pretty`.
    assert submission.patient == "João da Silva, 54 anos: controle"
    assert submission.tooth == "36"
    assert submission.original_filename == "radiografia panorâmica.png"
    # Fast acknowledgement: nothing downloaded yet, the worker fetches the file.
    assert not submission.image
    assert upload_host.requests == []
    assert submission_keys() == []
    for reference_id in ReferenceImage.objects.values_list("pk", flat=True):
        embed_reference_image(reference_id)

    # The worker: process_submission fetches the file (see matching/tasks.py) and matches it.
    assert process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    assert submission.status == Status.DONE
    assert submission.image.name.startswith("clientes/")
    assert submission_keys() == [submission.image.name]
    assert submission.remote_image_url == ""
    assert [r["path"] for r in upload_host.requests] == [UPLOAD_PATH]
    assert submission.matches.count() == settings.RAIOX_TOP_K


@pytest.mark.django_db
def test_fetch_remote_image_then_process(client, upload_host, settings):
    """The two steps separately: the service stores the image, the task then matches it."""
    settings.JOTFORM_API_KEY = "jotform-api-key-123"
    upload_host.serve(UPLOAD_PATH, xray_file(fmt="JPEG", mode="RGB"), headers={"Content-Type": "image/jpeg"})
    body, content_type = jotform_payload(
        upload_base=upload_host.url("/uploads/drsouza/231234567890123/5812345678901234567/")
    )
    assert post(client, body, content_type).status_code == 201
    submission = Submission.objects.get()

    stored = services.submission_prepare_image(submission_id=submission.pk)

    assert stored.image.name and stored.content_hash
    # Forms that require log-in to view uploads: the API key goes in the APIKEY header.
    assert upload_host.requests[0]["headers"]["APIKEY"] == "jotform-api-key-123"
    # Idempotent: a second call (task re-delivered) downloads nothing more.
    services.submission_prepare_image(submission_id=submission.pk)
    assert len(upload_host.requests) == 1
    assert process_submission(submission.pk) == "done"


@pytest.mark.django_db
def test_eu_account_delivery_with_full_name_and_numeric_tooth(client, upload_host):
    body, content_type = jotform_payload(name="jotform_webhook_eu.multipart")
    body = body.replace(b"https:\\/\\/eu.jotform.com", upload_host.url("").replace("/", "\\/").encode())

    response = post(client, body, content_type)

    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    assert submission.dentist_name == "Dr. Carlos Eduardo Lima"
    assert submission.dentist_email == "carlos@clinica.example.pt"
    assert submission.tooth == "21"
    assert submission.patient == ""
    assert submission.external_id == "5998877665544332211"
    assert submission.remote_image_url == upload_host.url(
        "/uploads/clinicalima/240987654321098/5998877665544332211/RX_21.jpg"
    )


@pytest.mark.django_db
def test_field_mapping_is_configurable(client, upload_host, settings):
    settings.JOTFORM_FIELD_MAP = {**settings.JOTFORM_FIELD_MAP, "tooth": "numeroDente"}
    body, content_type = jotform_payload(upload_base=upload_host.url("/u/"))
    body = body.replace(b'"q6_dente":"36"', b'"q9_numeroDente":"47","q6_dente":"11"')
    assert post(client, body, content_type).status_code == 201
    assert Submission.objects.get().tooth == "47"


@pytest.mark.django_db
def test_old_plain_form_still_works(client):
    body, content_type = plain_form(xray_file())

    response = post(client, body, content_type)

    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    assert (submission.dentist_name, submission.dentist_email, submission.patient, submission.tooth) == (
        "Ana Souza",
        "ana.souza@example.com",
        "João da Silva",
        "36",
    )
    assert submission.image.name.startswith("clientes/")
    assert storage_keys() == [submission.image.name]
    assert process_submission(submission.pk) == "done"


@pytest.mark.django_db
def test_hostile_file_name_is_accepted_safely(client):
    body, content_type = plain_form(xray_file(), filename=b"../../etc/passwd")
    assert post(client, body, content_type).status_code == 201
    submission = Submission.objects.get()
    assert submission.original_filename == "passwd"
    (key,) = storage_keys()
    assert "passwd" not in key and ".." not in key and "etc" not in key


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["", "?token=", "?token=wrong", "?token=S3CRET", "?tok=s3cret"])
def test_token_required_when_set(client, settings, upload_host, query):
    settings.JOTFORM_WEBHOOK_TOKEN = "s3cret"
    body, content_type = jotform_payload(upload_base=upload_host.url("/u/"))

    response = post(client, body, content_type, path=f"/jotform{query}")

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert Submission.objects.count() == 0
    assert storage_keys() == []


@pytest.mark.django_db
def test_right_token_accepted(client, settings, upload_host):
    settings.JOTFORM_WEBHOOK_TOKEN = "s3cret"
    body, content_type = jotform_payload(upload_base=upload_host.url("/u/"))
    assert post(client, body, content_type, path="/jotform?token=s3cret").status_code == 201
    plain, plain_type = plain_form(xray_file())
    assert post(client, plain, plain_type, path="/jotform?token=s3cret").status_code == 201
    assert Submission.objects.count() == 2


@pytest.mark.django_db
def test_form_id_allow_list(client, settings, upload_host):
    settings.JOTFORM_FORM_IDS = ["999"]
    body, content_type = jotform_payload(upload_base=upload_host.url("/u/"))
    response = post(client, body, content_type)
    assert response.status_code == 403
    assert response.json()["field"] == "formID"
    assert Submission.objects.count() == 0

    settings.JOTFORM_FORM_IDS = ["999", "231234567890123"]
    assert post(client, body, content_type).status_code == 201


# Jotform posts with the configured token (?token=): a repeat is told the first delivery's token.
TOKEN_PATH = "/jotform?token=t0ken"


@pytest.mark.django_db
def test_repeated_delivery_gives_the_same_submission(client, upload_host, settings):
    settings.JOTFORM_WEBHOOK_TOKEN = "t0ken"
    body, content_type = jotform_payload(upload_base=upload_host.url("/u/"))
    first = post(client, body, content_type, TOKEN_PATH)
    second = post(client, body, content_type, TOKEN_PATH)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["token"] == first.json()["token"]
    assert second.json()["duplicate"] is True
    assert Submission.objects.count() == 1


@pytest.mark.django_db
def test_repeated_plain_form_with_id_stores_one_file(client, settings):
    settings.JOTFORM_WEBHOOK_TOKEN = "t0ken"
    body, content_type = plain_form(xray_file())
    body = body.replace(
        b'----WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name="nome"',
        b'----WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name="submissionID"\r\n\r\n'
        b'777\r\n----WebKitFormBoundary7MA4YWxkTrZu0gW\r\nContent-Disposition: form-data; name="nome"',
        1,
    )
    tokens = {post(client, body, content_type, TOKEN_PATH).json()["token"] for _ in range(3)}
    assert len(tokens) == 1
    assert Submission.objects.count() == 1
    assert len(storage_keys()) == 1


def _post_concurrently(body: bytes, content_type: str, monkeypatch, threads: int = 2) -> list:
    """Post the same delivery from several threads; every thread reaches the INSERT before any commits,
    so the unique constraint (not the look-up before it) decides, as with two real simultaneous requests."""
    barrier = threading.Barrier(threads, timeout=30)
    original_save = Submission.save

    def save_after_everyone_checked(self, *args, **kwargs):
        if self.pk is None:
            barrier.wait()
        return original_save(self, *args, **kwargs)

    monkeypatch.setattr(Submission, "save", save_after_everyone_checked)
    responses: list = [None] * threads

    def worker(i: int) -> None:
        try:
            responses[i] = Client().generic("POST", TOKEN_PATH, body, content_type=content_type)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return responses


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_jotform_deliveries_give_one_submission(upload_host, monkeypatch, settings):
    settings.JOTFORM_WEBHOOK_TOKEN = "t0ken"
    body, content_type = jotform_payload(upload_base=upload_host.url("/u/"))

    responses = _post_concurrently(body, content_type, monkeypatch)

    assert sorted(r.status_code for r in responses) == [200, 201]
    assert len({r.json()["token"] for r in responses}) == 1
    assert Submission.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_uploads_store_one_file(monkeypatch, settings):
    settings.JOTFORM_WEBHOOK_TOKEN = "t0ken"
    body, content_type = plain_form(xray_file())
    body = replace_part(body, "paciente", b"Paciente X")
    body = body.replace(b'name="dente"', b'name="submissionID"', 1).replace(b"\r\n36\r\n", b"\r\nabc-123\r\n", 1)

    responses = _post_concurrently(body, content_type, monkeypatch, threads=3)

    assert sorted(r.status_code for r in responses) == [200, 200, 201]
    assert len({r.json()["token"] for r in responses}) == 1
    assert Submission.objects.count() == 1
    assert storage_keys() == [Submission.objects.get().image.name]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/uploads/x.png",
        "https://www.jotform.com.evil.example/uploads/x.png",
        "https://www.jotform.com@evil.example/uploads/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://www.jotform.com/uploads/x.png",
        "file:///etc/passwd",
    ],
)
def test_file_url_on_another_host_is_refused_at_once(client, settings, url):
    settings.JOTFORM_FILE_HOSTS = ["www.jotform.com"]
    body, content_type = jotform_payload(upload_base=url.rsplit("/", 1)[0] + "/")

    response = post(client, body, content_type)

    assert 400 <= response.status_code < 500
    assert response.json()["field"] == "file"
    assert Submission.objects.count() == 0
    assert storage_keys() == []


@pytest.mark.django_db
def test_redirect_to_another_host_is_not_followed(client, upload_host):
    upload_host.serve("/u/x.png", b"", status=302, headers={"Location": "http://127.0.0.2:9/secret.png"})
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="jotform", external_id="r1", remote_image_url=upload_host.url("/u/x.png"))
    )
    assert process_submission(submission.pk) == "failed"
    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert "não permitido" in submission.failure_reason
    assert storage_keys() == []


@pytest.mark.django_db
def test_redirect_on_allowed_host_is_followed(client, upload_host):
    upload_host.serve("/u/x.png", b"", status=302, headers={"Location": "/files/x.png"})
    upload_host.serve("/files/x.png", xray_file())
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="jotform", external_id="r2", remote_image_url=upload_host.url("/u/x.png"))
    )
    assert services.submission_prepare_image(submission_id=submission.pk).image


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (404, b"", "HTTP 404"),
        (200, b"<html>login</html>", "não é uma imagem"),
        (200, b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000, "limite"),
        (403, b"", "JOTFORM_API_KEY"),
    ],
)
def test_permanent_download_failure_marks_the_submission_failed(client, upload_host, settings, status, body, reason):
    settings.RAIOX_MAX_UPLOAD_BYTES = 200_000
    upload_host.serve("/u/x.png", body, status=status)
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="jotform", external_id="p1", remote_image_url=upload_host.url("/u/x.png"))
    )
    assert process_submission(submission.pk) == "failed"
    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert reason in submission.failure_reason
    assert storage_keys() == []


@pytest.mark.django_db
def test_transient_download_failure_is_retried_then_reported(client, upload_host, settings):
    upload_host.serve("/u/x.png", b"busy", status=503)
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="jotform", external_id="t1", remote_image_url=upload_host.url("/u/x.png"))
    )
    attempts = settings.Q_CLUSTER["max_attempts"]
    for _ in range(attempts - 1):
        with pytest.raises(TransientDownloadError):
            process_submission(submission.pk)  # raises: django-q delivers the task again
        submission.refresh_from_db()
        assert submission.status == Status.PROCESSING
    # The last attempt reports the failure instead of dropping it.
    assert process_submission(submission.pk) == "failed"
    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert "Não foi possível baixar" in submission.failure_reason
    assert len(upload_host.requests) == attempts


@pytest.mark.django_db
def test_transient_failure_then_success(client, upload_host):
    upload_host.serve("/u/x.png", b"", status=502)
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="jotform", external_id="t2", remote_image_url=upload_host.url("/u/x.png"))
    )
    with pytest.raises(TransientDownloadError):
        process_submission(submission.pk)
    upload_host.serve("/u/x.png", xray_file())
    assert process_submission(submission.pk) == "done"


@pytest.mark.django_db
def test_unreachable_host_raises_for_retry(client, settings):
    settings.JOTFORM_FILE_HOSTS = ["127.0.0.1:9"]
    settings.RAIOX_ALLOW_HTTP_DOWNLOADS = True
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="jotform", external_id="t3", remote_image_url="http://127.0.0.1:9/x.png")
    )
    with pytest.raises(TransientDownloadError):
        services.submission_prepare_image(submission_id=submission.pk)


@pytest.mark.django_db
def test_database_outage_answers_503_and_leaves_nothing(client, monkeypatch):
    def database_down(self, *args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(Submission, "save", database_down)
    body, content_type = plain_form(xray_file())

    response = post(client, body, content_type)

    assert response.status_code == 503
    assert response["Retry-After"]
    assert response.json()["code"] == "unavailable"
    monkeypatch.undo()
    assert Submission.objects.count() == 0
    assert storage_keys() == []  # the file written before the INSERT was deleted again


@pytest.mark.django_db
def test_storage_outage_answers_503_and_leaves_nothing(client, s3_storage, settings):
    options = settings.STORAGES["default"]["OPTIONS"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**settings.STORAGES["default"], "OPTIONS": {**options, "endpoint_url": "http://127.0.0.1:9"}},
    }
    body, content_type = plain_form(xray_file())

    response = post(client, body, content_type)

    assert response.status_code == 503
    assert response["Retry-After"]
    assert Submission.objects.count() == 0
    listed = s3_storage["client"].list_objects_v2(Bucket=s3_storage["bucket"])
    assert listed.get("KeyCount", 0) == 0


@pytest.mark.django_db
def test_plain_form_on_s3_stores_one_private_object(client, s3_storage):
    body, content_type = plain_form(xray_file())
    assert post(client, body, content_type).status_code == 201
    submission = Submission.objects.get()
    assert storage_keys() == [submission.image.name]


@pytest.mark.django_db
def test_get_is_refused(client):
    response = client.get("/jotform")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
