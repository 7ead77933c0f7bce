"""A confirmed case is for matching only (issue 13, finding 1).

Staff confirm dentist A's X-ray, which becomes a reference image of the implant. Dentist B then
sends a near-identical X-ray: the match comes from A's X-ray, but nothing B can reach — the JSON of
``/upload``, the result page, ``GET /implants``, the catalogue API — may serve A's X-ray. Every
image URL B is given is fetched (signed URLs from a private S3 bucket on moto's server) and its
bytes compared with A's.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django_q.conf import Conf
from django_q.models import OrmQ

from implants.models import Implant, ReferenceImage, ReferenceSource
from implants.services import reference_image_delete
from matching import tasks
from submissions.models import Submission
from testkit.images import xray_png

pytestmark = pytest.mark.django_db(transaction=True)


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources += [value for name, value in attrs if name == "src" and value]


def img_sources(html: str) -> list[str]:
    parser = _Images()
    parser.feed(html)
    return parser.sources


def fetch(client, url: str) -> bytes:
    """The bytes behind an image URL, as a browser would get them: the site's own paths through
    the test client, signed bucket URLs over HTTP."""
    parts = urlsplit(url)
    if parts.netloc in ("", "testserver"):
        response = client.get(parts.path + (f"?{parts.query}" if parts.query else ""))
        assert response.status_code == 200, url
        return b"".join(response.streaming_content) if response.streaming else response.content
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, url
    return response.content


def read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def post_xray(client, data: bytes, *, dentist: str, email: str, patient: str) -> dict:
    response = client.post(
        "/upload",
        {
            "file": SimpleUploadedFile("rx.png", data, "image/png"),
            "nome": dentist,
            "email": email,
            "paciente": patient,
            "dente": "36",
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "done"
    return body


@pytest.fixture
def worker_in_process(monkeypatch, s3_storage, catalog):
    """django-q's sync mode: every task queued on commit runs at once, the real worker code."""
    for reference_id in ReferenceImage.objects.values_list("pk", flat=True):
        tasks.embed_reference_image(reference_id)
    # The seed's own embedding tasks, just done above, would otherwise keep the queue "busy" and
    # /upload would answer 202 at once instead of waiting (tests/security/test_upload_wait.py).
    OrmQ.objects.all().delete()
    monkeypatch.setattr(Conf, "SYNC", True)


def test_a_confirmed_patients_xray_is_never_served_to_another_dentist(
    client, admin_client, worker_in_process, django_user_model
):
    # Dentist A's X-ray is analysed, then staff confirm an implant the matcher did not put first.
    xray_a = xray_png(seed=7)
    answer_a = post_xray(client, xray_a, dentist="Dra. Ana", email="ana@example.com", patient="Maria Paciente")
    submission_a = Submission.objects.get(token=answer_a["submission"])
    truth = Implant.objects.exclude(pk=answer_a["implants"][0]["id"]).order_by("-id").first()
    confirm = admin_client.post(f"/admin/submissions/submission/{submission_a.pk}/confirmar/", {"implant": truth.pk})
    assert confirm.status_code == 302
    submission_a.refresh_from_db()
    confirmed = submission_a.confirmed_reference_image
    assert confirmed.source == ReferenceSource.CONFIRMED_CASE and confirmed.embedding is not None
    patient_bytes = {xray_a, read(submission_a.image.name), read(confirmed.image.name)}

    # Staff may see it: the admin's confirm page serves the confirmed case (the check below can
    # tell A's X-ray when it meets it).
    staff_page = admin_client.get(f"/admin/submissions/submission/{submission_a.pk}/confirmar/").content.decode()
    assert patient_bytes & {fetch(admin_client, src) for src in img_sources(staff_page)}

    # Dentist B sends a near-identical X-ray: the match comes from A's confirmed case...
    client.logout()
    answer_b = post_xray(
        client, xray_png(seed=7, brightness=3), dentist="Dr. Bruno", email="bruno@example.com", patient="João"
    )
    submission_b = Submission.objects.get(token=answer_b["submission"])
    top = submission_b.matches.order_by("rank").first()
    assert top.implant_id == truth.pk and top.reference_image_id == confirmed.pk
    assert answer_b["implants"][0]["id"] == truth.pk

    # ...but every image B is shown is a catalogue image, never A's X-ray.
    served: dict[tuple[str, str], bytes] = {}  # (where, url) -> the bytes behind it
    json_urls = [item["image_url"] for item in answer_b["implants"] if item["image_url"]]
    assert len(json_urls) == len(answer_b["implants"])  # each candidate still has its picture
    page = client.get(urlsplit(answer_b["result_url"]).path)
    assert page.status_code == 200
    listing = client.get("/implants").json()["implants"]
    places = {
        "/upload JSON": json_urls,
        "result page": img_sources(page.content.decode()),
        "GET /implants": [item["image_url"] for item in listing if item["image_url"]],
    }
    for where, urls in places.items():
        for url in urls:
            served[where, url] = fetch(client, url)

    # An authenticated API client (not staff) reading the catalogue API.
    api_user = django_user_model.objects.create_user("clinica", "clinica@example.com", "x-pass-123")
    api = client.__class__()
    api.force_login(api_user)
    listed = api.get("/api/reference-images/?page_size=1000").json()
    listed = listed["results"] if isinstance(listed, dict) else listed
    of_truth = api.get(f"/api/implants/{truth.pk}/images/").json()
    one = api.get(f"/api/reference-images/{confirmed.pk}/")
    for where, items in {"/api/reference-images/": listed, "/api/implants/<id>/images/": of_truth}.items():
        for url in [item["image_url"] for item in items if item["image_url"]]:
            served[where, url] = fetch(api, url)
    if one.status_code == 200:
        served["/api/reference-images/<id>/", one.json()["image_url"]] = fetch(api, one.json()["image_url"])

    leaked = sorted(where for (where, _url), data in served.items() if data in patient_bytes)
    assert leaked == [], f"patient A's X-ray served to dentist B through {leaked}"
    assert one.status_code == 404
    assert {item["source"] for item in listed} == {ReferenceSource.CATALOG}
    catalogue_picture = read(ReferenceImage.objects.get(implant=truth, source=ReferenceSource.CATALOG).image.name)
    assert served["/upload JSON", json_urls[0]] == catalogue_picture  # the top card: the implant's catalogue image

    # An implant whose only reference image is the confirmed case shows no picture at all.
    reference_image_delete(reference=ReferenceImage.objects.get(implant=truth, source=ReferenceSource.CATALOG))
    page = client.get(urlsplit(answer_b["result_url"]).path).content.decode()
    listing = {item["id"]: item for item in client.get("/implants").json()["implants"]}
    assert listing[truth.pk]["image_url"] is None and listing[truth.pk]["reference_images"] == 1
    assert not patient_bytes & {fetch(client, src) for src in img_sources(page)}
    assert len(img_sources(page)) == len(places["result page"]) - 1  # the top card lost its picture
