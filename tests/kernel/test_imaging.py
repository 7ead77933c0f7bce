"""The worker's decode (``kernel.imaging.decode_image``) stores the pixels and nothing else, and
the same pixels under the same hash however it writes them.

Issue 15 made it cheap: a fast PNG encode, no second JPEG probe, and the sender's own PNG kept as
it is when it provably holds nothing but its pixels. These tests hold the privacy rule (no text
chunk, EXIF, ICC profile, DICOM tag or hidden byte ever stored) and the embedding reuse (a hash of
the pixels, as rows already stored were hashed) against those shortcuts.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps
from PIL.PngImagePlugin import PngInfo

from kernel.imaging import InvalidImage, decode_image, inspect_image
from testkit.dicom import dicom
from testkit.images import encode, png_chunk, xray_file

PATIENT = "Silva^Joao"


def _pixels(size: tuple[int, int], mode: str) -> Image.Image:
    """Radiograph-like pixels: soft gradient plus grain, so compression choices matter."""
    rng = np.random.default_rng(3)
    w, h = size
    grey = np.linspace(40, 200, w)[None, :] + rng.normal(0, 8, size=(h, w))
    img = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    return img if mode == "L" else Image.merge("RGB", [img, img.point(lambda v: v * 0.9), img.point(lambda v: v * 0.8)])


def png_with_text(mode: str) -> bytes:
    info = PngInfo()
    info.add_text("Comment", f"paciente {PATIENT}")  # tEXt
    info.add_text("Description", f"paciente {PATIENT}", zip=True)  # zTXt
    info.add_itxt("Author", f"Dr. Souza, paciente {PATIENT}", lang="pt", tkey="Autor")  # iTXt
    return encode(_pixels((300, 200), mode), "PNG", pnginfo=info, dpi=(300, 300))


def jpeg_with_exif() -> bytes:
    img = _pixels((300, 200), "RGB")
    exif = img.getexif()
    exif[0x013B] = PATIENT  # Artist
    exif[0x0112] = 6  # orientation: rotate 90° when shown
    return encode(img, "JPEG", exif=exif, icc_profile=b"\0" * 128)


def png16_with_text() -> bytes:
    info = PngInfo()
    info.add_text("PatientName", PATIENT)
    pixels = np.asarray(_pixels((300, 200), "L"), dtype=np.uint16) * 16
    return encode(Image.fromarray(pixels), "PNG", pnginfo=info)


def expected_pixels(data: bytes) -> Image.Image:
    """What the stored image must show, decoded here independently (Pillow formats only)."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if img.mode.startswith("I"):
        arr = np.asarray(img, dtype=np.float32)
        return Image.fromarray(((arr - arr.min()) / (arr.max() - arr.min()) * 255.0).astype(np.uint8))
    return img.convert("L" if img.mode in {"1", "L", "LA"} else "RGB")


def png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, body) of each chunk, read from the bytes; nothing may follow IEND."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        chunks.append((png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    assert pos == len(png) and chunks[-1][0] == b"IEND"
    return chunks


def assert_pixels_only(png: bytes) -> Image.Image:
    """The stored PNG: the header, the pixel data, the end, and not a byte more."""
    chunks = png_chunks(png)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and set(kinds[1:-1]) == {b"IDAT"}, kinds  # no tEXt/zTXt/iTXt/eXIf/iCCP/pHYs
    img = Image.open(io.BytesIO(png))
    inflater = zlib.decompressobj()
    rows = inflater.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert inflater.eof and not inflater.unused_data  # nothing after the compressed pixels
    assert len(rows) == img.height * (1 + img.width * len(img.getbands()))  # nothing but the rows
    assert not img.info and not img.getexif()
    for needle in (b"Silva", b"Joao", b"paciente"):
        assert needle not in png
    return img


def pixel_hash(img: Image.Image) -> str:
    """The content hash as every stored row was hashed: mode, size, then the raw pixels."""
    return hashlib.sha256(f"{img.mode}:{img.width}x{img.height}:".encode() + img.tobytes()).hexdigest()


SENT_WITH_METADATA = {
    "png-grey-text-chunks": lambda: png_with_text("L"),
    "png-rgb-text-chunks": lambda: png_with_text("RGB"),
    "png-16-bit-text": png16_with_text,
    "jpeg-exif-icc": jpeg_with_exif,
}


@pytest.mark.parametrize("name", list(SENT_WITH_METADATA))
def test_the_stored_png_holds_the_same_pixels_and_nothing_else(name):
    data = SENT_WITH_METADATA[name]()
    assert PATIENT.encode() in data

    result = decode_image(data)

    stored = assert_pixels_only(result.content)
    expected = expected_pixels(data)
    assert (stored.mode, stored.size) == (expected.mode, expected.size)
    assert stored.size == (result.width, result.height)
    assert stored.tobytes() == expected.tobytes()
    assert result.content_hash == pixel_hash(stored)


def test_a_dicom_is_stored_as_its_first_frame_without_its_tags():
    data = dicom(frames=2, samples=3)  # PatientName, birth date; two RGB frames
    assert PATIENT.encode() in data
    result = decode_image(data)
    stored = assert_pixels_only(result.content)
    assert (stored.mode, stored.size) == ("RGB", (100, 100))
    frame = np.frombuffer(data[-2 * 100 * 100 * 3 :][: 100 * 100 * 3], dtype=np.uint8).reshape(100, 100, 3)
    assert stored.tobytes() == frame.tobytes()  # 8-bit colour: kept as it is
    assert result.content_hash == pixel_hash(stored)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_a_png_holding_only_its_pixels_is_kept_as_sent(mode):
    """No encode when the sender's PNG already is what we would write (Pillow's own PNG: header,
    pixel data, end). The hash is the same as for the same pixels sent in any other form."""
    img = _pixels((300, 200), mode)
    sent = encode(img, "PNG")
    result = decode_image(sent)
    assert result.content == sent
    assert result.content_hash == pixel_hash(img) == decode_image(encode(img, "BMP")).content_hash


def _clean_png(rows_extra: bytes = b"", idat_extra: bytes = b"") -> tuple[bytes, Image.Image]:
    """A PNG written by hand, chunk by chunk: 8-bit grey, one IDAT, nothing else."""
    img = _pixels((120, 80), "L")
    raw = img.tobytes()
    rows = b"".join(b"\0" + raw[y * 120 : (y + 1) * 120] for y in range(80))
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 120, 80, 8, 0, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(rows + rows_extra) + idat_extra)
    return b"\x89PNG\r\n\x1a\n" + header + idat + png_chunk(b"IEND", b""), img


def _before_idat(png: bytes, chunk: bytes) -> bytes:
    at = png.index(b"IDAT") - 4
    return png[:at] + chunk + png[at:]


HIDING_PLACES = {
    "text-chunk": lambda p: _before_idat(p, png_chunk(b"tEXt", f"Comment\0paciente {PATIENT}".encode())),
    "private-chunk": lambda p: _before_idat(p, png_chunk(b"prVt", PATIENT.encode())),
    "empty-private-chunk": lambda p: _before_idat(p, png_chunk(b"siLv", b"")),  # even its name is a message
    "physical-size-chunk": lambda p: _before_idat(p, png_chunk(b"pHYs", struct.pack(">IIB", 11811, 11811, 1))),
    "bytes-after-iend": lambda p: p + f"paciente {PATIENT}".encode(),
    "idat-after-the-stream": lambda p: p[:-12] + png_chunk(b"IDAT", PATIENT.encode()) + p[-12:],
    "bytes-after-the-stream-in-idat": lambda p: _clean_png(idat_extra=PATIENT.encode())[0],
    "rows-past-the-image": lambda p: _clean_png(rows_extra=PATIENT.encode() * 50)[0],
}


def test_the_hand_written_png_is_kept_as_sent():
    png, img = _clean_png()
    result = decode_image(png)
    assert result.content == png and result.content_hash == pixel_hash(img)


@pytest.mark.parametrize("place", list(HIDING_PLACES))
def test_a_png_with_anything_besides_its_pixels_is_written_anew(place):
    """Whatever a PNG carries besides its pixels, in a chunk or in bytes a decoder skips, makes it
    fail the proof: the pixels are encoded anew, and the extra never reaches storage."""
    clean, img = _clean_png()
    sent = HIDING_PLACES[place](clean)
    assert sent != clean

    result = decode_image(sent)

    assert result.content != sent
    stored = assert_pixels_only(result.content)
    assert stored.tobytes() == img.tobytes()
    assert result.content_hash == pixel_hash(img)


SAME_PICTURE = {
    "png": lambda img: encode(img, "PNG"),
    "png-level-9": lambda img: encode(img, "PNG", compress_level=9),
    "png-with-text": lambda img: encode(img, "PNG", pnginfo=PngInfo()),
    "bmp": lambda img: encode(img, "BMP"),
    "tiff": lambda img: encode(img, "TIFF"),
}


def test_the_content_hash_is_of_the_pixels_whatever_the_file():
    """Embedding reuse looks rows up by this hash: it must not depend on how a PNG was compressed,
    so rows stored before the encode settings changed still match new uploads of the picture."""
    img = _pixels((300, 200), "L")
    hashes = {name: decode_image(make(img)).content_hash for name, make in SAME_PICTURE.items()}
    assert set(hashes.values()) == {pixel_hash(img)}, hashes


@pytest.mark.parametrize("name", ["png", "jpeg", "dicom", "png16", "jpeg-exif"])
def test_decoding_the_stored_png_again_changes_nothing(name):
    """The stored PNG, decoded again (reference images re-imported, a re-run), is kept byte for
    byte under the same hash."""
    data = {
        "png": lambda: xray_file(fmt="PNG"),
        "jpeg": lambda: xray_file(fmt="JPEG"),
        "dicom": lambda: dicom(frames=1, samples=1, bits=16),
        "png16": png16_with_text,
        "jpeg-exif": jpeg_with_exif,
    }[name]()
    first = decode_image(data)
    again = decode_image(first.content)
    assert again.content == first.content
    assert again.content_hash == first.content_hash


def _refusal(check, data: bytes) -> tuple[str, str, int] | None:
    try:
        check(data)
    except InvalidImage as exc:
        return exc.code, str(exc), exc.status
    return None


@pytest.mark.parametrize("progressive", [False, True])
def test_a_cut_jpeg_gets_the_same_refusal_in_the_worker_as_at_intake(progressive):
    """The worker no longer runs intake's 1/8-scale JPEG probe before its full decode: the full
    decode reads the same scan data, so every cut the probe refuses, it refuses the same way."""
    data = encode(_pixels((400, 300), "RGB"), "JPEG", quality=90, progressive=progressive)
    refused = 0
    for cut in range(len(data) // 40, len(data), len(data) // 40):
        at_intake = _refusal(inspect_image, data[:cut])
        assert _refusal(decode_image, data[:cut]) == at_intake, cut
        refused += at_intake is not None
    assert refused >= 30  # the cuts past the headers are refused, not decoded as grey
