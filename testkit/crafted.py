"""One builder for the crafted structures of issue 22 (the security tests and ``bench.crafted``):
files small enough to upload whose framing makes an honest reader work without end, and files
whose header declares pixels they do not hold."""

from __future__ import annotations

import io
import struct

from testkit.dicom import dicom_file
from testkit.images import plain_image, png_chunk


def base_image(fmt: str, size: tuple[int, int] = (128, 128), mode: str = "L", **options) -> bytes:
    """The honest file each crafted structure starts from."""
    return plain_image(size, 90, mode=mode, fmt=fmt, **options)


def tiff_chained_pages(pages: int = 50_000) -> bytes:
    """A real TIFF page whose IFD is repeated ``pages`` more times, chained: each copy a whole page
    (its values out of line point to the first page's, strips included), ~130 bytes each."""
    data = bytearray(base_image("TIFF"))
    (first,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, first)
    entries = bytes(data[first + 2 : first + 2 + 12 * count])
    next_at = first + 2 + 12 * count
    for n in range(pages):
        here = len(data)
        struct.pack_into("<I", data, next_at, here)
        data += struct.pack("<H", count) + entries + b"\0\0\0\0"
        next_at = here + 2 + 12 * count
    return bytes(data)


def tiff_cut_short() -> bytes:
    """An uncompressed TIFF whose only strip is cut in half."""
    data = base_image("TIFF", size=(256, 256))
    return data[: len(data) // 2]


def jpeg_fill_bytes(count: int = 1_000_000) -> bytes:
    """A JPEG with ``count`` 0xFF fill bytes before its first marker after SOI."""
    good = base_image("JPEG")
    return good[:2] + b"\xff" * count + good[2:]


def jpeg_empty_segments(count: int = 250_000) -> bytes:
    """A JPEG with ``count`` empty APP15 segments (4 bytes each) before its frame header."""
    good = base_image("JPEG")
    return good[:2] + b"\xff\xef\x00\x02" * count + good[2:]


def png_private_chunks(count: int = 200_000) -> bytes:
    """A PNG with ``count`` empty private chunks (12 bytes each) between IHDR and IDAT."""
    good = base_image("PNG")
    at = 8 + 25  # signature, then IHDR (13 bytes of data + 12 of framing)
    return good[:at] + png_chunk(b"prIv", b"") * count + good[at:]


def _dicom_insert(data: bytes, extra: bytes) -> bytes:
    """``extra`` inserted right after the file meta group (its length from (0002,0000))."""
    (meta_length,) = struct.unpack_from("<I", data, 132 + 8)
    at = 132 + 12 + meta_length
    return data[:at] + extra + data[at:]


def _small_dicom() -> bytes:
    return dicom_file(rows=128, columns=128, pixel_data=bytes(128 * 128))


def dicom_empty_elements(count: int = 600_000) -> bytes:
    """A DICOM with ``count`` empty private elements (0009,0010) LO (8 bytes each)."""
    return _dicom_insert(_small_dicom(), struct.pack("<HH2sH", 0x0009, 0x0010, b"LO", 0) * count)


def dicom_deep_sequences(depth: int = 200) -> bytes:
    """A DICOM with a private sequence nested ``depth`` deep (undefined lengths)."""
    open_one = struct.pack("<HH2sHI", 0x0009, 0x1010, b"SQ", 0, 0xFFFFFFFF) + struct.pack(
        "<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF
    )
    close_one = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return _dicom_insert(_small_dicom(), open_one * depth + close_one * depth)


def bmp_without_pixels() -> bytes:
    """A BMP's headers (and palette), and not one pixel."""
    data = base_image("BMP", size=(512, 512))
    (offset,) = struct.unpack_from("<I", data, 10)
    return data[:offset]


def bmp_cut_short() -> bytes:
    """A BMP holding half the pixel rows its header declares."""
    data = base_image("BMP", size=(512, 512))
    (offset,) = struct.unpack_from("<I", data, 10)
    return data[: offset + (len(data) - offset) // 2]


def webp_cut_short() -> bytes:
    """A WebP whose RIFF header declares more bytes than the file holds."""
    data = base_image("WEBP", size=(256, 256), mode="RGB", lossless=True)
    return data[: len(data) - 16]


# name -> (bytes, the refusal's code)
CRAFTED_STRUCTURES = {
    "tiff-50k-chained-pages": (tiff_chained_pages, "too_complex"),
    "tiff-strip-cut-short": (tiff_cut_short, "corrupt_image"),
    "jpeg-1m-fill-bytes": (jpeg_fill_bytes, "too_complex"),
    "jpeg-250k-empty-segments": (jpeg_empty_segments, "too_complex"),
    "png-200k-private-chunks-before-idat": (png_private_chunks, "too_complex"),
    "dicom-600k-empty-elements": (dicom_empty_elements, "too_complex"),
    "dicom-sequences-200-deep": (dicom_deep_sequences, "too_complex"),
    "bmp-header-without-pixels": (bmp_without_pixels, "corrupt_image"),
    "bmp-half-the-pixels": (bmp_cut_short, "corrupt_image"),
    "webp-cut-short": (webp_cut_short, "corrupt_image"),
}


def dicom_compressed(
    *, rows: int, columns: int, frames: int = 1, fragments: list[bytes] | None = None, samples: int = 1
) -> bytes:
    """An encapsulated (JPEG Baseline) DICOM declaring ``frames`` frames of ``rows`` x ``columns``;
    its fragments are ``fragments`` as given (default: one honest JPEG of that size per frame), so
    the pixel data may hold far less, or another size, than the header declares."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

    if fragments is None:
        mode = "RGB" if samples == 3 else "L"
        fragments = [base_image("JPEG", size=(columns, rows), mode=mode)] * frames
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, samples
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PhotometricInterpretation = "YBR_FULL_422" if samples == 3 else "MONOCHROME2"
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate(fragments)
    ds["PixelData"].VR = "OB"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


# Malformed PNGs whose chunks are each whole (the security tests).
def png_with_exif(exif: bytes) -> bytes:
    """A valid PNG with an ``eXIf`` chunk (valid checksum) carrying ``exif`` before its pixel data."""
    good = plain_image()
    at = good.index(b"IDAT") - 4
    return good[:at] + png_chunk(b"eXIf", exif) + good[at:]


# Two malformed EXIF blocks: not a TIFF header at all, and a TIFF header cut before its first offset.
PNG_EXIF_JUNK = png_with_exif(b"junk")
PNG_EXIF_TRUNCATED = png_with_exif(b"II*\x00")


def png_broken_pixel_data() -> bytes:
    """Every chunk whole and checksummed, but the pixel data is not a deflate stream: only a full
    decode (the worker's) finds out."""
    good = plain_image()
    header = good[8 : 8 + 25]
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", b"\x78\x9c" + b"\xff" * 300) + png_chunk(b"IEND", b"")
