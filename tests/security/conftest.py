"""Fixtures of the security tests: crafted files, and the intake tests' stand-in upload host."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from tests.submissions.conftest import upload_host  # noqa: F401  (a fixture, used by name)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def plain_png(size: tuple[int, int] = (200, 200), value: int = 100) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, value).save(out, format="PNG")
    return out.getvalue()


def png_with_exif(exif: bytes) -> bytes:
    """A valid PNG with an ``eXIf`` chunk (valid checksum) carrying ``exif`` before its pixel data."""
    good = plain_png()
    at = good.index(b"IDAT") - 4
    return good[:at] + png_chunk(b"eXIf", exif) + good[at:]


# Two malformed EXIF blocks: not a TIFF header at all, and a TIFF header cut before its first offset.
PNG_EXIF_JUNK = png_with_exif(b"junk")
PNG_EXIF_TRUNCATED = png_with_exif(b"II*\x00")


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
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Silva^Joao"
    ds.PatientBirthDate = "19700101"
    ds.Rows, ds.Columns = rows, columns
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    dtype = {8: np.uint8, 16: np.uint16}.get(bits, np.uint8)
    shape = (frames, rows, columns, samples) if samples > 1 else (frames, rows, columns)
    data = np.random.default_rng(0).integers(0, 200, shape, dtype=dtype).tobytes()
    if pixel_bytes is not None:
        data = data[:pixel_bytes]
    ds.PixelData = data + (b"\0" if len(data) % 2 else b"")
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def png_broken_pixel_data() -> bytes:
    """Every chunk whole and checksummed, but the pixel data is not a deflate stream: only a full
    decode (the worker's) finds out."""
    good = plain_png()
    header = good[8 : 8 + 25]
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", b"\x78\x9c" + b"\xff" * 300) + png_chunk(b"IEND", b"")
