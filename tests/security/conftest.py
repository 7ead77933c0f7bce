"""Fixtures of the security tests: crafted files, and the intake tests' stand-in upload host."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from testkit.dicom import dicom_file
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


def png_broken_pixel_data() -> bytes:
    """Every chunk whole and checksummed, but the pixel data is not a deflate stream: only a full
    decode (the worker's) finds out."""
    good = plain_png()
    header = good[8 : 8 + 25]
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", b"\x78\x9c" + b"\xff" * 300) + png_chunk(b"IEND", b"")
