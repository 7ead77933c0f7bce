from __future__ import annotations

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from implants.models import Implant
from implants.services import reference_image_create
from kernel.storage_keys import client_id_for_email, submission_image_key
from testkit.images import plain_image

pytestmark = pytest.mark.django_db


class _Sub:
    def __init__(self, source: str, email: str):
        self.source = source
        self.dentist_email = email


@pytest.mark.parametrize("source", ["jotform", "webhook"])
def test_dentist_xrays_go_under_clientes_with_a_keyed_hash_never_the_email(source):
    email = "Dra.Ana+implante@clinica.com.br"
    key = submission_image_key(_Sub(source, email), "../../etc/passwd ana silva.jpg")
    folder = client_id_for_email(email)
    assert key.startswith(f"clientes/{folder}/")
    assert "ana" not in key.lower() and "clinica" not in key and "@" not in key and ".." not in key
    # The same dentist always lands in the same folder, whatever the case of the address.
    assert client_id_for_email(email.upper()) == folder
    assert client_id_for_email("outra@clinica.com.br") != folder


@pytest.mark.parametrize("source", ["upload", "api"])
def test_direct_uploads_go_under_uploads(source):
    key = submission_image_key(_Sub(source, "a@b.com"), "raio-x.png")
    assert key.startswith("uploads/") and key.endswith(".png") and "raio-x" not in key


def test_s3_round_trip_against_moto_server_is_private_and_signed(s3_storage, catalog):
    implant = Implant.objects.first()
    payload = b"\x89PNG fake bytes are fine for storage"
    name = default_storage.save("referencia/roundtrip.png", ContentFile(payload))
    with default_storage.open(name, "rb") as fh:
        assert fh.read() == payload
    # file_overwrite=False: a second save under the same key gets a new key.
    second = default_storage.save("referencia/roundtrip.png", ContentFile(b"other"))
    assert second != name
    objects = s3_storage["client"].list_objects_v2(Bucket=s3_storage["bucket"])["Contents"]
    assert {o["Key"] for o in objects} >= {name, second}
    # Private: an unsigned GET is refused; the signed URL works.
    url = default_storage.url(name)
    assert "X-Amz-Signature" in url and "X-Amz-Expires=300" in url
    assert requests.get(url, timeout=5).content == payload
    acl = s3_storage["client"].get_object_acl(Bucket=s3_storage["bucket"], Key=name)
    assert not any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in acl["Grants"])
    del implant


def test_reference_image_service_writes_through_s3(s3_storage, catalog):
    implant = Implant.objects.first()
    before = implant.reference_images.count()
    ref = reference_image_create(implant=implant, image_bytes=plain_image((128, 128), 90), filename="x.png")
    assert ref.image.name.startswith("referencia/")
    keys = {o["Key"] for o in s3_storage["client"].list_objects_v2(Bucket=s3_storage["bucket"])["Contents"]}
    assert ref.image.name in keys
    assert implant.reference_images.count() == before + 1


def test_a_reference_file_that_is_not_an_image_is_refused_and_nothing_is_stored(s3_storage, catalog):
    from kernel.errors import ApplicationError

    implant = Implant.objects.first()
    before = implant.reference_images.count()

    def keys() -> set[str]:
        listing = s3_storage["client"].list_objects_v2(Bucket=s3_storage["bucket"])
        return {o["Key"] for o in listing.get("Contents", [])}

    stored = keys()
    with pytest.raises(ApplicationError):
        reference_image_create(implant=implant, image_bytes=b"not an image", filename="x.png")
    assert keys() == stored
    assert implant.reference_images.count() == before
