"""One validation for every source: each accepted format arrives through the machine endpoints, is
kept as received after a header check, and the worker's decode replaces it by the same normalised
PNG."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from kernel.imaging import decode_image, inspect_image
from submissions.models import Submission
from submissions.services import submission_prepare_image
from testkit.dicom import twelve_bit_dicom
from testkit.images import encode, xray_file
from testkit.payloads import plain_form
from tests.builders.storage import storage_keys


def heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(Image.open(io.BytesIO(xray_file(mode="RGB"))), "HEIF")


def dicom(photometric: str = "MONOCHROME2") -> bytes:
    pixels = np.asarray(Image.open(io.BytesIO(xray_file())), dtype=np.uint16) * 16  # 12-bit, as detectors give
    return twelve_bit_dicom(pixels, photometric=photometric, Modality="DX")


def tiff16() -> bytes:
    pixels = np.asarray(Image.open(io.BytesIO(xray_file())), dtype=np.uint16) * 256
    return encode(Image.fromarray(pixels), "TIFF")


def exif_rotated_jpeg() -> bytes:
    img = Image.open(io.BytesIO(xray_file((256, 128), mode="RGB")))
    exif = img.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° when shown
    return encode(img, "JPEG", exif=exif)


FORMATS = {
    "JPEG": lambda: xray_file(fmt="JPEG"),
    "PNG": lambda: xray_file(fmt="PNG"),
    "WEBP": lambda: xray_file(fmt="WEBP"),
    "TIFF": lambda: xray_file(fmt="TIFF"),
    "TIFF-16bit": tiff16,
    "BMP": lambda: xray_file(fmt="BMP"),
    "HEIC": heic,
    "DICOM": dicom,
    "DICOM-MONOCHROME1": lambda: dicom("MONOCHROME1"),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_accepted_format_is_validated(name):
    header = inspect_image(FORMATS[name]())
    assert (header.width, header.height) == (256, 192)
    result = decode_image(FORMATS[name]())
    assert result.source_format.split("-")[0] in {"JPEG", "PNG", "WEBP", "TIFF", "BMP", "HEIF", "DICOM"}
    assert (result.width, result.height) == (256, 192)
    assert Image.open(io.BytesIO(result.content)).format == "PNG"


def test_exif_orientation_is_applied():
    result = decode_image(exif_rotated_jpeg())
    assert (result.width, result.height) == (128, 256)


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(FORMATS))
def test_each_format_through_the_old_form(client, django_capture_on_commit_callbacks, name):
    body, content_type = plain_form(FORMATS[name](), filename=b"radiografia.bin")
    response = client.generic("POST", "/jotform", body, content_type=content_type)
    assert response.status_code == 201, response.content
    (original,) = storage_keys()
    submission = Submission.objects.get()
    assert original == submission.image.name and not submission.content_hash  # kept as received
    assert original.endswith(inspect_image(FORMATS[name]()).filename[len("imagem") :])

    with django_capture_on_commit_callbacks(execute=True):
        submission_prepare_image(submission_id=submission.pk)  # the worker's decode

    (key,) = storage_keys()
    submission.refresh_from_db()
    assert key.endswith(".png") and key == submission.image.name and submission.content_hash
    assert key != original


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["HEIC", "DICOM"])
def test_each_format_through_the_json_webhook(client, name):
    payload = {"nome": "Ana", "email": "ana@example.com", "file": base64.b64encode(FORMATS[name]()).decode()}
    response = client.post("/webhook", json.dumps(payload), content_type="application/json")
    assert response.status_code == 201, response.content
    assert len(storage_keys()) == 1
