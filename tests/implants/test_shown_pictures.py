"""Which reference pictures are shown (issue 23, item 2): anything but a confirmed case. Pictures
imported from the old system's ``referencia/`` are catalogue pictures: they appear on result
cards, in ``GET /implants`` and in the catalogue API; a confirmed case (a patient's X-ray) appears
in none of them."""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

from implants import services
from implants.catalog import CATALOG
from implants.models import Implant, ReferenceImage, ReferenceSource
from implants.seed import seed_features
from implants.selectors import catalog_images, is_showable
from implants.synthetic import Silhouette, render_png
from submissions.results.queries import card_image_url
from tests.builders.submissions import submission_row
from tests.security.test_confirmed_case_privacy import img_sources

pytestmark = pytest.mark.django_db

SHOWN = {ReferenceSource.CATALOG: True, ReferenceSource.IMPORTED: True, ReferenceSource.CONFIRMED_CASE: False}


def test_every_source_is_decided():
    assert set(SHOWN) == set(ReferenceSource)


def _implant_with_one_picture(source: str) -> tuple[Implant, ReferenceImage]:
    manufacturer, _ = services.manufacturer_get_or_create(name="Fabricante Teste")
    item = CATALOG["Neodent"][0]
    features = seed_features()[("Neodent", item["name"])]
    implant, _ = services.implant_get_or_create(manufacturer=manufacturer, name=f"Linha {source}", **features)
    png = render_png(Silhouette(**item["drawing"]), seed_name=source)
    reference = services.reference_image_create(implant=implant, image_bytes=png, filename="x.png", source=source)
    return implant, reference


def _path(url: str | None) -> str:
    return urlsplit(url or "").path


@pytest.mark.parametrize("source", list(ReferenceSource))
def test_a_picture_is_shown_everywhere_unless_it_is_a_confirmed_case(client, people, source):
    implant, reference = _implant_with_one_picture(source)
    shown = SHOWN[source]
    picture = _path(reference.image.url)

    # The one rule.
    assert (reference in catalog_images()) is shown
    assert is_showable(reference) is shown

    # GET /implants (public, the old system's listing).
    listed = {item["id"]: item for item in client.get("/implants").json()["implants"]}
    assert (_path(listed[implant.pk]["image_url"]) == picture) is shown
    assert (listed[implant.pk]["image_url"] is None) is not shown

    # The catalogue API.
    headers = people["plain"].headers
    api_images = client.get("/api/reference-images/", **headers).json()
    api_images = api_images.get("results", api_images) if isinstance(api_images, dict) else api_images
    assert any(item["id"] == reference.pk and _path(item["image_url"]) == picture for item in api_images) is shown
    per_implant = client.get(f"/api/implants/{implant.pk}/images/", **headers).json()
    assert [_path(item["image_url"]) for item in per_implant] == ([picture] if shown else [])

    # The result card of a match that came from this picture, and its page.
    submission = submission_row(matches=[implant])
    match = submission.matches.get()
    match.reference_image = reference
    match.save(update_fields=["reference_image"])
    assert (_path(card_image_url(match)) == picture) is shown
    page = client.get(f"/r/{submission.token}/").content.decode()
    assert (picture in [_path(src) for src in img_sources(page)]) is shown


def test_an_implant_the_old_system_brought_is_shown_with_its_imported_picture(client, people, tmp_path):
    item = CATALOG["Straumann"][5]
    folder = tmp_path / "copia" / "referencia"
    folder.mkdir(parents=True)
    (folder / "blx.png").write_bytes(render_png(Silhouette(**item["drawing"]), seed_name="old blx"))
    csv_path = tmp_path / "implants.csv"
    csv_path.write_text(
        "id,name,manufacturer,type,image_url,embedding\n"
        "7,BLX,Straumann,Cone Morse,https://raiox-images.nyc3.digitaloceanspaces.com/referencia/blx.png,\n"
    )
    call_command(
        "import_legacy",
        "--csv",
        str(csv_path),
        "--images-dir",
        str(tmp_path / "copia"),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    implant = Implant.objects.get(legacy_id=7)
    reference = implant.reference_images.get()
    assert reference.source == ReferenceSource.IMPORTED
    picture = _path(reference.image.url)

    listed = client.get("/implants").json()["implants"]
    assert [_path(i["image_url"]) for i in listed if i["id"] == implant.pk] == [picture]
    api = client.get(f"/api/implants/{implant.pk}/images/", **people["plain"].headers).json()
    assert [_path(i["image_url"]) for i in api] == [picture]
    submission = submission_row(matches=[implant])
    page = client.get(f"/r/{submission.token}/").content.decode()
    assert picture in [_path(src) for src in img_sources(page)]
