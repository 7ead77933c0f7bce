"""Shared fixtures: the real embedded PostgreSQL + pgvector (via pytest-django), a real
S3-protocol server on loopback (moto's server mode), the seed catalogue."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from django.core.management import call_command

from testkit.procs import free_port

# Fixtures more than one folder uses (the upload host, the embedded catalogue, staff people).
pytest_plugins = ["tests.builders.fixtures"]


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Each test writes local files under its own folder, so counting files is exact."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media/"},
        },
    }
    yield


@pytest.fixture(autouse=True)
def _fresh_worker_memo(monkeypatch):
    """A worker records its model in WorkerState once, then only beats: the memo of having done so
    lives in the process. Each test's database starts without that row (rolled back), so the memo
    starts empty too, as in a freshly started worker."""
    from matching import workers

    monkeypatch.setattr(workers, "_state_recorded_at", None)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's S3 server in a thread on loopback: the real S3 protocol over HTTP, no network."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage(settings, moto_server) -> Iterator[dict]:
    """Point the default storage at a fresh private bucket on the moto server."""
    import uuid

    bucket = f"raiox-test-{uuid.uuid4().hex[:8]}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    client = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1", **credentials)
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": moto_server,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "default_acl": "private",
                "querystring_auth": True,
                "querystring_expire": 300,
                "file_overwrite": False,
                "signature_version": "s3v4",
                "addressing_style": "path",
            },
        },
    }
    yield {"bucket": bucket, "client": client, "endpoint": moto_server}


@pytest.fixture
def catalog(db) -> None:
    call_command("seed_catalog", verbosity=0)


@pytest.fixture(autouse=True)
def _rate_limits_off_unless_tested(settings):
    """The suite sends hundreds of writes from 127.0.0.1, which production would rightly refuse:
    the per-address limits are off unless a test sets them (tests/security/test_rate_limits.py)."""
    settings.RAIOX_RATE_LIMITS = {}
