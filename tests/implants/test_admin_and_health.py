from __future__ import annotations

import pytest
from django.db.utils import OperationalError

from implants.models import Implant, Manufacturer

pytestmark = pytest.mark.django_db


def test_catalogue_admin_pages_render_with_counts_and_thumbnails(admin_client, catalog):
    response = admin_client.get("/admin/implants/manufacturer/")
    assert response.status_code == 200
    assert b"Nobel Biocare" in response.content and b"Straumann" in response.content

    response = admin_client.get("/admin/implants/implant/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "32 implantes" in html
    assert html.count('<img src="/media/referencia/') == 32

    implant = Implant.objects.first()
    response = admin_client.get(f"/admin/implants/implant/{implant.pk}/change/")
    assert response.status_code == 200
    assert "/media/referencia/" in response.content.decode()

    response = admin_client.get("/admin/implants/implant/?q=Titamax")
    assert response.content.decode().count("Titamax") >= 3


def test_admin_works_on_s3_storage_with_signed_thumbnail_urls(admin_client, s3_storage, catalog):
    response = admin_client.get("/admin/implants/implant/")
    assert response.status_code == 200
    assert response.content.decode().count("X-Amz-Signature") == 32


def test_implant_list_query_count_does_not_grow_with_rows(admin_client, catalog, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        admin_client.get("/admin/implants/implant/")


def test_admin_requires_login(client):
    response = client.get("/admin/implants/implant/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_manufacturer_counts(catalog):
    assert Manufacturer.objects.get(name="Zimmer").implants.filter(is_active=True).count() == 8


def test_healthcheck_up(client):
    response = client.get("/healthcheck")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["storage"]["ok"]
    assert body["checks"]["pgvector"]["version"].startswith("0.")


def test_healthcheck_up_on_s3(client, s3_storage):
    body = client.get("/healthcheck").json()
    assert body["checks"]["storage"] == {"ok": True, "backend": "S3Storage"}


def test_healthcheck_names_unreachable_storage(client, s3_storage, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], "endpoint_url": "http://127.0.0.1:9"},
        },
    }
    response = client.get("/healthcheck")
    assert response.status_code == 503
    assert response.json()["failing"] == ["storage"]


def test_healthcheck_names_unreachable_database(client, monkeypatch):
    def broken():
        raise OperationalError("connection refused")

    from raiox import health

    monkeypatch.setitem(health.CHECKS, "database", broken)
    monkeypatch.setitem(health.CHECKS, "pgvector", broken)
    response = client.get("/healthcheck")
    assert response.status_code == 503
    assert set(response.json()["failing"]) == {"database", "pgvector"}
