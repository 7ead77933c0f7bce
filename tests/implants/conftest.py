"""Fixtures of the catalogue's tests."""

from __future__ import annotations

import uuid

import boto3
import pytest


@pytest.fixture
def old_bucket(moto_server, monkeypatch):
    """The old system's bucket (its ``referencia/`` pictures) on moto's S3 server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"raiox-images-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return {"bucket": bucket, "client": client, "endpoint": moto_server}
