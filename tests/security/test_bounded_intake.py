"""Bounded intake parsing (issue 22): each format's framing is walked with explicit caps before
Pillow or pydicom reads it (``kernel.imaging._walk_structure``), and a header declaring more pixel
bytes than the file holds is refused at intake, as DICOM's already was. Before, a TIFF of 50 000
chained pages cost 15-28 s of CPU, a JPEG of a million fill bytes, a PNG of many private chunks
and a DICOM of 600 000 empty elements 150-200 MB each, and a BMP with no pixels was stored and
queued. The time and memory of each refusal are printed by ``python -m bench.crafted``."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from kernel.imaging import InvalidImage, inspect_image
from submissions.models import Submission
from testkit.crafted import CRAFTED_STRUCTURES
from testkit.dicom import dicom_file
from testkit.images import encode
from tests.builders.storage import storage_keys


@pytest.fixture(scope="module")
def crafted() -> dict[str, bytes]:
    return {name: build() for name, (build, _) in CRAFTED_STRUCTURES.items()}


@pytest.mark.parametrize("name", list(CRAFTED_STRUCTURES))
def test_inspect_refuses_each_crafted_structure_with_its_code(crafted, name):
    with pytest.raises(InvalidImage) as caught:
        inspect_image(crafted[name])
    assert caught.value.status == 400 and caught.value.code == CRAFTED_STRUCTURES[name][1]
    assert caught.value.field == "file" and caught.value.message


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(CRAFTED_STRUCTURES))
def test_upload_refuses_each_crafted_structure_and_keeps_nothing(client, crafted, name):
    response = client.post("/upload", {"file": SimpleUploadedFile("raio-x.bin", crafted[name])})
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert set(body) == {"error", "field", "code"} and body["code"] == CRAFTED_STRUCTURES[name][1]
    assert not Submission.objects.exists() and storage_keys() == []


def test_a_multi_page_tiff_within_the_cap_is_still_accepted():
    from PIL import Image

    pages = [Image.new("L", (128, 128), n * 20) for n in range(10)]
    header = inspect_image(encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]))
    assert header.source_format == "TIFF" and header.frames == 10


def test_a_dicom_with_nested_sequences_is_still_accepted():
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    inner = Dataset()
    inner.CodeValue = "T-11170"
    outer = Dataset()
    outer.ReferencedSOPInstanceUID = "1.2.3"
    outer.AnatomicRegionSequence = Sequence([inner])
    data = dicom_file(
        rows=128, columns=128, pixel_data=bytes(128 * 128), Modality="DX", ReferencedImageSequence=Sequence([outer])
    )
    assert inspect_image(data).source_format == "DICOM"
