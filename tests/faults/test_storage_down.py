"""Fault run 3: the S3-protocol server is stopped during intake.

Deliveries that carry the X-ray's bytes need the bucket: while it is down, intake answers 503 with
Retry-After (so the sender retries) and leaves no Submission row behind. The moto server is started
again on the same port; the senders' retries are accepted and a real worker (reading the bucket)
processes everything accepted. A Jotform delivery (the file stays on Jotform's host) needs no
storage at intake and is accepted during the outage; the worker fetches it after recovery.
"""

from __future__ import annotations

import socket
import uuid

import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count

from submissions.models import Status, Submission
from testkit.images import xray_file, xray_png
from testkit.payloads import jotform_payload
from tests.builders.storage import storage_keys
from tests.builders.worker import embed_catalog, report, wait_until

UPLOAD_DIR = "/uploads/drsouza/231234567890123/9000000000000000003/"
UPLOAD_PATH = UPLOAD_DIR + "radiografia%20panor%C3%A2mica.png"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_form(client, i: int):
    return client.post(
        "/jotform",
        {
            "submissionID": f"s3-{i:03d}",
            "nome": "Dra. Ana",
            "email": "ana@example.com",
            "dente": "21",
            "file": SimpleUploadedFile(f"raiox-{i}.png", xray_png(300 + i), "image/png"),
        },
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_storage_outage_answers_503_leaves_no_row_and_recovers(client, catalog, settings, upload_host, cluster_factory):
    from moto.server import ThreadedMotoServer

    embed_catalog()  # reference embeddings come from the local catalogue; X-rays go to the bucket
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    bucket = f"raiox-fault-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    s3.create_bucket(Bucket=bucket)
    options = {
        "bucket_name": bucket,
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "access_key": "t",
        "secret_key": "t",
        "default_acl": "private",
        "file_overwrite": False,
        "signature_version": "s3v4",
        "addressing_style": "path",
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }

    def bucket_keys() -> list[str]:
        return [k for k in storage_keys() if k.startswith("clientes/") or k.startswith("uploads/")]

    try:
        accepted: dict[str, str] = {}
        for i in range(3):
            response = post_form(client, i)
            assert response.status_code == 201, response.content
            accepted[f"s3-{i:03d}"] = response.json()["token"]
        assert len(bucket_keys()) == 3

        moto.stop()  # the bucket is unreachable now
        refused = []
        for i in range(3, 7):
            response = post_form(client, i)
            assert response.status_code == 503, response.content
            assert response["Retry-After"] and response.json()["code"] == "unavailable"
            refused.append(i)
        assert Submission.objects.count() == 3  # no orphan row
        # Jotform's own deliveries leave the file on Jotform: they are accepted during the outage.
        upload_host.serve(UPLOAD_PATH, xray_file(seed=3))
        body, content_type = jotform_payload(
            upload_base=upload_host.url(UPLOAD_DIR), submission_id="9000000000000000003"
        )
        response = client.generic("POST", "/jotform", body, content_type=content_type)
        assert response.status_code == 201, response.content
        accepted["9000000000000000003"] = response.json()["token"]

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()  # same port, same in-memory bucket
        for i in refused:  # the sender's retries
            response = post_form(client, i)
            assert response.status_code == 201, response.content
            accepted[f"s3-{i:03d}"] = response.json()["token"]
        response = post_form(client, 0)  # a retry of a delivery that had been accepted
        assert response.status_code == 200 and response.json()["duplicate"] is True

        cluster_factory(
            AWS_STORAGE_BUCKET_NAME=bucket,
            AWS_S3_ENDPOINT_URL=endpoint,
            AWS_S3_REGION_NAME="us-east-1",
            AWS_ACCESS_KEY_ID="t",
            AWS_SECRET_ACCESS_KEY="t",
            AWS_S3_ADDRESSING_STYLE="path",
            JOTFORM_FILE_HOSTS=upload_host.netloc,
            RAIOX_ALLOW_HTTP_DOWNLOADS="1",
        ).start()
        assert wait_until(lambda: not Submission.objects.exclude(status=Status.DONE).exists()), list(
            Submission.objects.values_list("pk", "status", "failure_reason")
        )

        submissions = list(Submission.objects.annotate(n=Count("matches")))
        assert sorted(str(s.token) for s in submissions) == sorted(accepted.values())
        # Every stored X-ray belongs to a row, every row has its X-ray in the bucket: no orphans.
        assert sorted(bucket_keys()) == sorted(s.image.name for s in submissions)
        processed = sum(1 for s in submissions if s.status == Status.DONE and s.n == 3)
        duplicated = len(submissions) - len({s.external_id for s in submissions})
        report(
            "S3 down during intake",
            accepted=len(accepted),
            processed=processed,
            lost=len(accepted) - processed,
            duplicated=duplicated,
            answered_503=len(refused),
            orphan_rows=0,
        )
        assert (processed, duplicated) == (len(accepted), 0) and len(accepted) == 8
    finally:
        moto.stop()
