"""Who may do what, checked over HTTP: the API (token) and the admin (session)."""

from __future__ import annotations

import pytest

from implants.models import Implant, Manufacturer
from tests.builders.submissions import submission_row

pytestmark = pytest.mark.django_db

PATIENT = "Maria Paciente"


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anonymous", 401), ("plain", 403), ("editor", 403), ("viewer", 200), ("reviewer", 200), ("admin", 200)],
)
def test_submissions_api_is_for_staff_reviewers(client, people, catalog, who, expected):
    submission_row(matches=list(Implant.objects.all()[:3]))
    response = client.get("/api/submissions/", **people[who].headers)
    assert response.status_code == expected
    if expected in (401, 403):
        assert PATIENT not in response.content.decode()
        assert set(response.json()) == {"error", "field", "code"}


@pytest.mark.parametrize(("who", "sees_patient"), [("viewer", False), ("reviewer", True), ("admin", True)])
def test_patient_name_only_with_permission(client, people, catalog, who, sees_patient):
    submission = submission_row(matches=list(Implant.objects.all()[:3]))
    listing = client.get("/api/submissions/", **people[who].headers).json()
    detail = client.get(f"/api/submissions/{submission.pk}/", **people[who].headers).json()
    assert ("patient" in listing["results"][0]) is sees_patient
    assert ("patient" in detail) is sees_patient
    assert (PATIENT in str(listing)) is sees_patient


@pytest.mark.parametrize(
    ("who", "read", "write"),
    [("anonymous", 401, 401), ("plain", 200, 403), ("reviewer", 200, 403), ("editor", 200, 201), ("admin", 200, 201)],
)
def test_catalogue_api_read_for_clients_write_for_editors(client, people, catalog, who, read, write):
    assert client.get("/api/implants/", **people[who].headers).status_code == read
    assert client.get("/api/manufacturers/", **people[who].headers).status_code == read
    manufacturer = Manufacturer.objects.get(name="Straumann")
    body = {
        "manufacturer": manufacturer.pk,
        "name": f"Novo {who}",
        "connection": "morse_taper",
        "body_shape": "tapered",
        "thread_shape": "v",
        "diameters_mm": ["3.50", "4.10"],
    }
    response = client.post("/api/implants/", body, content_type="application/json", **people[who].headers)
    assert response.status_code == write
    assert Implant.objects.filter(name=f"Novo {who}").exists() is (write == 201)


def test_admin_review_pages_by_role(client, people, catalog):
    submission = submission_row(matches=list(Implant.objects.all()[:3]))
    url = f"/admin/submissions/submission/{submission.pk}/change/"

    client.force_login(people["editor"].user)
    assert client.get("/admin/submissions/submission/").status_code == 403
    assert client.get("/admin/implants/implant/").status_code == 200

    client.force_login(people["viewer"].user)
    page = client.get(url)
    assert page.status_code == 200 and PATIENT not in page.content.decode()
    assert "Ana" in page.content.decode()

    client.force_login(people["reviewer"].user)
    page = client.get(url).content.decode()
    assert PATIENT in page
    # Read-only review: no save buttons, but the confirm link.
    assert 'name="_save"' not in page and "/confirmar/" in page

    client.force_login(people["plain"].user)
    response = client.get("/admin/dashboard/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_create_roles_is_idempotent(roles):
    from io import StringIO

    from django.contrib.auth.models import Group
    from django.core.management import call_command

    before = {g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()}
    call_command("create_roles", stdout=StringIO())
    after = {g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()}
    assert before == after and len(after) == 2
    assert "view_patient_data" in after["Revisores de casos"]
    assert "view_patient_data" not in after["Editores de catálogo"]
    assert {"add_implant", "change_implant", "add_referenceimage"} <= after["Editores de catálogo"]
