"""Compressed DICOM frames checked against their declared size before any decoder sees them (issue
22). An encapsulated (JPEG) DICOM holds its frames as opaque fragments: its header may declare
far more than a few kB of fragments, and the codestream inside may declare another canvas than
the header does (a 128 x 128 DICOM whose JPEG is 7000 x 7000 made the worker's decoder allocate
~50 MB before the mismatch was noticed). Both are refused from the header, at intake and in the
worker, and pydicom's decoder is never called."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from kernel import imaging
from kernel.imaging import InvalidImage, decode_image, inspect_image
from submissions.models import Submission
from testkit.crafted import base_image, dicom_compressed
from tests.builders.storage import storage_keys

# name -> (builder, the refusal's status and code)
CASES = {
    # 4000 x 4000 a frame is within the pixel limit; 50 of them declare 800 MB in a 1 kB file.
    "50-frames-of-4000x4000-in-one-small-fragment": (
        lambda: dicom_compressed(rows=4000, columns=4000, frames=50, fragments=[base_image("JPEG", size=(64, 64))]),
        413,
        "too_many_pixels",
    ),
    "128x128-declared-7000x7000-jpeg-inside": (
        lambda: dicom_compressed(rows=128, columns=128, fragments=[base_image("JPEG", size=(7000, 7000))]),
        400,
        "corrupt_image",
    ),
    "four-frames-declared-one-fragment-held": (
        lambda: dicom_compressed(rows=128, columns=128, frames=4, fragments=[base_image("JPEG", size=(128, 128))]),
        400,
        "corrupt_image",
    ),
    "grey-declared-colour-jpeg-inside": (
        lambda: dicom_compressed(rows=128, columns=128, fragments=[base_image("JPEG", size=(128, 128), mode="RGB")]),
        400,
        "corrupt_image",
    ),
}


@pytest.fixture
def no_decoder(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the DICOM decoder was called")

    monkeypatch.setattr(imaging, "_decode_dicom", refuse)


@pytest.mark.parametrize("name", list(CASES))
def test_intake_and_worker_refuse_without_decoding(no_decoder, name):
    build, status, code = CASES[name]
    data = build()
    for check in (inspect_image, decode_image):  # the web process, then the worker
        with pytest.raises(InvalidImage) as caught:
            check(data)
        assert (caught.value.status, caught.value.code) == (status, code)


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(CASES))
def test_upload_refuses_and_keeps_nothing(client, no_decoder, name):
    build, status, code = CASES[name]
    response = client.post("/upload", {"file": SimpleUploadedFile("raio-x.dcm", build())})
    assert response.status_code == status, response.content[:300]
    assert response.json()["code"] == code
    assert not Submission.objects.exists() and storage_keys() == []


@pytest.mark.parametrize(("frames", "samples"), [(1, 1), (3, 1), (1, 3)])
def test_an_honest_compressed_dicom_still_decodes(frames, samples):
    data = dicom_compressed(rows=256, columns=300, frames=frames, samples=samples)
    header = inspect_image(data)
    assert (header.source_format, header.width, header.height, header.frames) == ("DICOM", 300, 256, frames)
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == (300, 256)
