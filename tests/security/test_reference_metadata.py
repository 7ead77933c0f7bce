"""Reference images keep no metadata (issue 13): catalogue images and confirmed cases were stored
as received, EXIF (camera, GPS, author, dates) and DICOM tags (patient name, birth date) included.
They are now stored as a PNG of the pixels only."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from implants.models import ReferenceImage
from implants.services import implant_get_or_create, manufacturer_get_or_create, reference_image_create
from submissions import services
from testkit.dicom import dicom
from testkit.images import encode, plain_image

PATIENT = "Silva^Joao"


def jpeg_with_exif() -> bytes:
    img = Image.new("RGB", (300, 200), (90, 90, 90))
    exif = img.getexif()
    exif[0x013B] = PATIENT  # Artist
    exif[0x010E] = "Paciente Joao Silva, 54 anos"  # ImageDescription
    exif[0x0112] = 6  # orientation: rotate 90° when shown
    return encode(img, "JPEG", exif=exif, icc_profile=b"\0" * 128)


def png_with_text() -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", f"paciente {PATIENT}")
    return plain_image((200, 200), 120, pnginfo=info)


def _stored(reference: ReferenceImage) -> bytes:
    with reference.image.open("rb") as fh:
        return fh.read()


def _assert_pixels_only(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG"
    assert not img.getexif() and "exif" not in img.info and "icc_profile" not in img.info
    assert not getattr(img, "text", {})
    for needle in (b"Silva", b"Joao", b"paciente", b"Paciente"):
        assert needle not in data
    return img


@pytest.fixture
def implant(db):
    return implant_get_or_create(
        manufacturer=manufacturer_get_or_create(name="Neodent")[0],
        name="Titamax CM",
        connection="morse_taper",
        body_shape="parallel",
        thread_shape="v",
    )[0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "make", "size"),
    [("jpeg-exif", jpeg_with_exif, (200, 300)), ("png-text", png_with_text, (200, 200)), ("dicom", dicom, (100, 100))],
)
def test_catalogue_reference_images_are_stored_as_pixels_only(implant, name, make, size):
    reference = reference_image_create(implant=implant, image_bytes=make(), filename=f"{name}.bin")
    img = _assert_pixels_only(_stored(reference))
    assert img.size == size  # EXIF orientation applied before the EXIF was dropped
    assert reference.image.name.endswith(".png")


@pytest.mark.django_db
def test_a_confirmed_case_is_stored_as_pixels_only(implant):
    # Confirmed by staff straight after intake: the stored file is still the sender's original.
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="upload", image_bytes=jpeg_with_exif(), filename="x.jpg")
    )
    confirmed = services.submission_confirm(submission=submission, implant=implant, user=None)
    _assert_pixels_only(_stored(confirmed.confirmed_reference_image))
