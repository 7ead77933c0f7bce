"""One builder for the DICOM files the tests and benches send (explicit VR little endian,
uncompressed, Secondary Capture), so the file meta and the pixel module are written in one place.

Each caller chooses what makes its case: the pixels (or a pixel data cut short, or none worth the
name), the bit depth, and the patient attributes the intake must strip."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def dicom_file(
    *,
    rows: int,
    columns: int,
    pixel_data: bytes,
    samples: int = 1,
    frames: int = 1,
    bits_allocated: int = 8,
    bits_stored: int | None = None,
    photometric: str | None = None,
    **attributes: str,
) -> bytes:
    """A DICOM file of ``frames`` images ``rows`` x ``columns`` with ``samples`` per pixel;
    ``pixel_data`` is written as given (padded to even length, as DICOM requires), so it may be
    short of what the header declares. ``attributes`` are further data elements by keyword
    (``Modality="DX"``, ``PatientName="Silva^Joao"``)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.Rows, ds.Columns = rows, columns
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric or ("RGB" if samples == 3 else "MONOCHROME2")
    if samples > 1:
        ds.PlanarConfiguration = 0
    stored = bits_stored or bits_allocated
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits_allocated, stored, stored - 1, 0
    ds.PixelData = pixel_data + (b"\0" if len(pixel_data) % 2 else b"")
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def twelve_bit_dicom(pixels, *, photometric: str = "MONOCHROME2", **attributes: str) -> bytes:
    """A grey radiograph as a detector writes it: 16 bits allocated, 12 stored (``pixels``: a 2-D
    uint16 array already in 0..4095)."""
    rows, columns = pixels.shape
    return dicom_file(
        rows=rows,
        columns=columns,
        pixel_data=pixels.tobytes(),
        bits_allocated=16,
        bits_stored=12,
        photometric=photometric,
        **attributes,
    )


def dicom(
    *,
    rows: int = 100,
    columns: int = 100,
    frames: int = 2,
    samples: int = 3,
    bits: int = 8,
    pixel_bytes: int | None = None,
) -> bytes:
    """A DICOM file (explicit VR little endian, uncompressed), RGB two-frame 100 × 100 8-bit by
    default; ``pixel_bytes`` cuts the pixel data short."""
    dtype = {8: np.uint8, 16: np.uint16}.get(bits, np.uint8)
    shape = (frames, rows, columns, samples) if samples > 1 else (frames, rows, columns)
    data = np.random.default_rng(0).integers(0, 200, shape, dtype=dtype).tobytes()
    if pixel_bytes is not None:
        data = data[:pixel_bytes]
    return dicom_file(
        rows=rows,
        columns=columns,
        pixel_data=data,
        samples=samples,
        frames=frames,
        bits_allocated=bits,
        PatientName="Silva^Joao",
        PatientBirthDate="19700101",
    )
