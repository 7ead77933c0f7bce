"""The API lists' filters (django-filter FilterSets, ``kernel.filters``): a value a filter cannot
take — a superscript digit, letters where an id, a date, a choice or a boolean goes, an id that
names nothing — is a 400 naming the parameter on every filtered endpoint; good values filter; and
/api/schema/ documents every filter."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from implants.models import Implant, Manufacturer, ReferenceImage
from submissions.models import Status
from tests.builders.submissions import submission_row
from tests.openapi_check import check

pytestmark = pytest.mark.django_db

# Every typed filter of every list endpoint, and who may read that list.
TYPED_FILTERS = [
    ("/api/implants/", "manufacturer", "plain"),
    ("/api/implants/", "active", "plain"),
    ("/api/reference-images/", "implant", "plain"),
    ("/api/reference-images/", "embedded", "plain"),
    ("/api/submissions/", "status", "reviewer"),
    ("/api/submissions/", "source", "reviewer"),
    ("/api/submissions/", "received_after", "reviewer"),
    ("/api/submissions/", "received_before", "reviewer"),
    ("/api/submissions/", "confirmed", "reviewer"),
]
# "²" and "³" pass str.isdigit() and int() refuses them; "٣" (Arabic-Indic three) is a decimal
# digit int() reads, but names no choice, date or boolean; the rest are letters and near misses.
BAD_VALUES = ["²", "³", "abc", "1a", "-", "99999999999999999999", "2024-02-30", "yes", "\x00"]


def _bad_for(name: str) -> list[str]:
    # A huge or odd number is still a number: for an id it names no row (400 too, tested here);
    # "٣" is 3 for an id filter, so it is bad only where ids are not taken.
    return BAD_VALUES if name in ("manufacturer", "implant") else [*BAD_VALUES, "٣"]


@pytest.mark.parametrize(("path", "name", "who"), TYPED_FILTERS)
def test_a_value_the_filter_cannot_take_is_a_400_naming_it(client, people, catalog, openapi, path, name, who):
    submission_row()
    for value in _bad_for(name):
        response = client.get(path, {name: value}, **people[who].headers)
        assert response.status_code == 400, (path, name, value, response.content)
        body = check(openapi, path, "get", response)  # the refusal is documented, body as sent
        assert body["field"] == name and body["error"] and body["code"] == "invalid", (path, name, value, body)


def test_an_id_that_names_nothing_is_refused_not_an_empty_list(client, people, catalog):
    headers = people["plain"].headers
    missing = Manufacturer.objects.order_by("-pk").first().pk + 1000
    response = client.get(f"/api/implants/?manufacturer={missing}", **headers)
    assert response.status_code == 400 and response.json()["field"] == "manufacturer"


def test_the_catalogue_filters_filter(client, people, catalog):
    headers = people["plain"].headers
    nobel = Manufacturer.objects.get(name="Nobel Biocare")
    listed = client.get("/api/implants/", {"manufacturer": nobel.pk, "page_size": 100}, **headers).json()
    assert listed["count"] == Implant.objects.filter(manufacturer=nobel).count() > 0
    assert {row["manufacturer_name"] for row in listed["results"]} == {"Nobel Biocare"}

    retired = Implant.objects.filter(manufacturer=nobel).first()
    retired.is_active = False
    retired.save()
    inactive = client.get("/api/implants/?active=false", **headers).json()
    assert [row["id"] for row in inactive["results"]] == [retired.pk]
    active = client.get("/api/implants/?active=TRUE", **headers).json()
    assert active["count"] == Implant.objects.count() - 1
    # Blank is no filter, as if absent.
    assert client.get("/api/implants/?active=&manufacturer=", **headers).json()["count"] == Implant.objects.count()

    implant = ReferenceImage.objects.order_by("pk").first().implant
    images = client.get("/api/reference-images/", {"implant": implant.pk}, **headers).json()
    assert images["count"] == ReferenceImage.objects.filter(implant=implant).count() > 0
    assert {row["implant"] for row in images["results"]} == {implant.pk}
    ReferenceImage.objects.filter(pk=images["results"][0]["id"]).update(embedded_at=timezone.now())
    embedded = client.get("/api/reference-images/?embedded=true", **headers).json()
    assert [row["id"] for row in embedded["results"]] == [images["results"][0]["id"]]
    pending = client.get("/api/reference-images/?embedded=false&page_size=1000", **headers).json()
    assert pending["count"] == ReferenceImage.objects.count() - 1

    found = client.get("/api/manufacturers/?name=BIOCARE", **headers).json()
    assert [row["name"] for row in found["results"]] == ["Nobel Biocare"]


def test_the_submission_filters_filter(client, people, catalog):
    now = timezone.now()
    implant = Implant.objects.first()
    old = submission_row(received_at=now - dt.timedelta(days=5))
    confirmed = submission_row(received_at=now - dt.timedelta(days=1), confirmed=implant)
    failed = submission_row(received_at=now, status=Status.FAILED)
    headers = people["reviewer"].headers

    def ids(query: str) -> set[int]:
        response = client.get(f"/api/submissions/?{query}", **headers)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("confirmed=true") == {confirmed.pk}
    assert ids("confirmed=false") == {old.pk, failed.pk}
    before = (timezone.localdate() - dt.timedelta(days=3)).isoformat()
    assert ids(f"received_before={before}") == {old.pk}
    assert ids(f"received_after={before}&status=done") == {confirmed.pk}


def test_the_schema_documents_every_filter(client):
    schema = client.get("/api/schema/?format=json").json()
    expected = {
        "/api/implants/": {"manufacturer": "integer", "active": "boolean"},
        "/api/reference-images/": {"implant": "integer", "embedded": "boolean"},
        "/api/manufacturers/": {"name": "string"},
        "/api/submissions/": {
            "status": "string",
            "source": "string",
            "received_after": "string",
            "received_before": "string",
            "confirmed": "boolean",
        },
    }
    for path, filters in expected.items():
        documented = {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"] if p["in"] == "query"}
        assert {name: documented[name]["type"] for name in filters} == filters, path
    submissions = {p["name"]: p["schema"] for p in schema["paths"]["/api/submissions/"]["get"]["parameters"]}
    assert set(submissions["status"]["enum"]) == set(Status.values)
    assert submissions["received_after"]["format"] == "date"
