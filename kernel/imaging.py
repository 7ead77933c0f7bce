"""One validation for every image that enters the system, whatever the source, in two steps.

- ``inspect_image`` runs in the web process: it reads what the file *declares* (format, dimensions,
  frames, samples per pixel × bits allocated, EXIF) and accepts or refuses the file without
  decoding its pixels, so a small file declaring a huge canvas costs the web process nothing.
  Two cheap structural checks go with it: a PNG's chunk checksums (no inflating) and a JPEG
  decoded at 1/8 scale (at most 1/64 of its pixels), which catch truncated uploads at once.
- ``decode_image`` runs in the worker (and for staff's reference images): the full decode, first
  DICOM frame only, normalised to a PNG holding pixels only (EXIF orientation applied, then every
  metadata block dropped: EXIF, ICC, text chunks, DICOM tags), greyscale kept greyscale.

Both raise ``InvalidImage`` (a 4xx ``ApplicationError`` with a Portuguese message) and nothing
else for a bad file: whatever a hostile file makes a decoder throw is translated, so intake answers
4xx and the worker knows the file is poison (failing it at once, never retrying).

Formats are recognised by content, never by name.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from kernel.errors import ApplicationError

# Pillow formats we accept (HEIC and DICOM are recognised before Pillow sees the bytes).
PIL_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")
ACCEPTED_LABEL = "JPEG, PNG, WebP, TIFF, BMP, HEIC ou DICOM"
EXTENSIONS = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "BMP": ".bmp",
    "HEIF": ".heic",
    "DICOM": ".dcm",
}
# DICOM sample layouts we decode: grey or colour, 8 to 32 bits a sample.
DICOM_SAMPLES = {1, 3}
DICOM_BITS = {8, 16, 32}


class InvalidImage(ApplicationError):
    """A file that is not, and will never be, a usable X-ray: refused at intake (4xx), poison in
    the worker (failed at once with this message, never retried)."""

    def __init__(self, message: str, *, field: str = "file", status: int = 400, code: str = "invalid_image"):
        super().__init__(message, field=field, status=status, code=code)


@dataclass(frozen=True)
class ImageHeader:
    """What ``inspect_image`` read from a file's headers."""

    source_format: str  # JPEG, PNG, WEBP, TIFF, BMP, HEIF, DICOM
    width: int
    height: int
    frames: int = 1

    @property
    def filename(self) -> str:
        """A name for the original bytes as received (the extension follows the content)."""
        return f"imagem{EXTENSIONS.get(self.source_format, '.bin')}"


@dataclass(frozen=True)
class ValidatedImage:
    content: bytes  # normalised PNG, pixels only
    width: int
    height: int
    source_format: str  # what the sender's bytes were: JPEG, PNG, HEIF, DICOM...
    content_hash: str  # sha256 of the decoded pixels: equal pictures, equal hash

    @property
    def filename(self) -> str:
        return "imagem.png"


def size_label(limit: int) -> str:
    """A byte limit as people read it: "20 MB", "200 kB"."""
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MB"
    return f"{max(limit // 1024, 1)} kB"


def file_too_large(field: str = "file") -> InvalidImage:
    """The size cap's one refusal, whether found from a declared size or from the bytes."""
    return InvalidImage(
        f"Arquivo muito grande: o limite é {size_label(settings.RAIOX_MAX_UPLOAD_BYTES)}.",
        field=field,
        status=413,
        code="file_too_large",
    )


def _too_many_pixels(field: str) -> InvalidImage:
    return InvalidImage(
        "Imagem com dimensões grandes demais para ser processada.", field=field, status=413, code="too_many_pixels"
    )


def _corrupt(field: str) -> InvalidImage:
    return InvalidImage(
        "A imagem está corrompida ou incompleta. Envie o arquivo novamente.", field=field, code="corrupt_image"
    )


def _corrupt_dicom(field: str) -> InvalidImage:
    return InvalidImage("Arquivo DICOM ilegível ou sem imagem.", field=field, code="corrupt_image")


def _is_dicom(data: bytes) -> bool:
    return len(data) > 132 and data[128:132] == b"DICM"


def _is_heif(data: bytes) -> bool:
    return len(data) > 12 and data[4:8] == b"ftyp" and data[8:12] in {b"heic", b"heix", b"mif1", b"msf1", b"heim"}


def _check_size(width: int, height: int, *, field: str, samples: int = 1) -> None:
    if width * height * samples > settings.RAIOX_MAX_IMAGE_PIXELS:
        raise _too_many_pixels(field)
    min_side = settings.RAIOX_MIN_IMAGE_SIDE
    if min(width, height) < min_side:
        raise InvalidImage(
            f"Imagem pequena demais para ser analisada (mínimo {min_side} × {min_side} pixels).",
            field=field,
            code="image_too_small",
        )


# --- DICOM -------------------------------------------------------------------------------------


def _read_dicom(data: bytes, field: str):  # -> pydicom.Dataset
    import pydicom

    try:
        with warnings.catch_warnings():
            # pydicom warns (and logs) about every oddity of a hostile file; the refusal says enough.
            warnings.simplefilter("ignore")
            # defer_size: large values (the pixel data) stay unread until asked for.
            return pydicom.dcmread(io.BytesIO(data), defer_size=4096)
    except Exception as exc:
        raise _corrupt_dicom(field) from exc


def _inspect_dicom(data: bytes, field: str) -> ImageHeader:
    dataset = _read_dicom(data, field)
    try:
        rows = int(dataset.get("Rows", 0) or 0)
        columns = int(dataset.get("Columns", 0) or 0)
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        samples = int(dataset.get("SamplesPerPixel", 1) or 1)
        bits = int(dataset.get("BitsAllocated", 0) or 0)
        pixel_element = dataset.get_item("PixelData") if "PixelData" in dataset else None
        transfer_syntax = dataset.file_meta.get("TransferSyntaxUID")
        encapsulated = bool(transfer_syntax is not None and transfer_syntax.is_encapsulated)
    except Exception as exc:
        raise _corrupt_dicom(field) from exc
    if rows <= 0 or columns <= 0 or pixel_element is None or frames < 1:
        raise _corrupt_dicom(field)
    if samples not in DICOM_SAMPLES or bits not in DICOM_BITS:
        raise InvalidImage(
            "Arquivo DICOM num formato de pixels não suportado (aceitos: 1 ou 3 amostras de 8, 16 ou 32 bits).",
            field=field,
            code="unsupported_dicom",
        )
    # Only the first frame is ever decoded, so only its size counts; samples count as pixels
    # (an RGB frame holds three times the data of a grey one).
    _check_size(columns, rows, field=field, samples=samples)
    if not encapsulated:
        # Uncompressed: the pixel data must hold every frame it declares, or the file is cut short.
        length = getattr(pixel_element, "length", None)
        if length is None:
            length = len(getattr(pixel_element, "value", b"") or b"")
        if length < rows * columns * samples * (bits // 8) * frames:
            raise _corrupt_dicom(field)
    return ImageHeader("DICOM", columns, rows, frames)


def _decode_dicom(data: bytes, field: str) -> Image.Image:
    import numpy as np
    from pydicom.pixels import pixel_array

    dataset = _read_dicom(data, field)
    photometric = str(dataset.get("PhotometricInterpretation", ""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pixels = pixel_array(dataset, index=0).astype("float32")  # first frame only
    colour = pixels.ndim == 3 and pixels.shape[-1] == 3
    if pixels.ndim != 2 and not colour:
        raise _corrupt_dicom(field)
    low, high = float(pixels.min()), float(pixels.max())
    if colour and high <= 255.0:
        return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))  # 8-bit colour: as it is
    scaled = (pixels - low) / (high - low or 1.0) * 255.0
    if colour:
        return Image.fromarray(scaled.clip(0, 255).astype(np.uint8))
    if photometric == "MONOCHROME1":
        scaled = 255.0 - scaled  # MONOCHROME1 stores bone dark: flip to the usual look
    return Image.fromarray(scaled.clip(0, 255).astype(np.uint8))


# --- Pillow formats ----------------------------------------------------------------------------


def _open_pillow(data: bytes, field: str) -> Image.Image:
    """Open (headers only: Pillow decodes nothing until ``load``)."""
    if _is_heif(data):
        import pillow_heif

        pillow_heif.register_heif_opener()
        formats: tuple[str, ...] = ("HEIF",)
    else:
        formats = PIL_FORMATS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as exc:  # Pillow's own guard fires at open for huge canvases
        raise _too_many_pixels(field) from exc
    except UnidentifiedImageError as exc:
        raise InvalidImage(
            f"O arquivo não é uma imagem reconhecida. Formatos aceitos: {ACCEPTED_LABEL}.",
            field=field,
            code="not_an_image",
        ) from exc
    except Exception as exc:
        raise _corrupt(field) from exc


def _check_structure(data: bytes, img: Image.Image, field: str) -> None:
    """The cheap checks a header allows: EXIF parses, the PNG's chunks are whole, the JPEG's scan
    data reaches its end (decoded at 1/8 scale: at most 1/64 of the pixels in memory)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # A malformed EXIF block would break orientation in the worker. (Pillow's PNG reader
            # decodes the whole image to look for an eXIf chunk after the pixels: only one found
            # before them is read here; a later one is the worker's to meet.)
            if img.format != "PNG" or "exif" in img.info:
                img.getexif()
            if img.format == "PNG":
                Image.open(io.BytesIO(data), formats=("PNG",)).verify()
            elif img.format == "JPEG":
                probe = Image.open(io.BytesIO(data), formats=("JPEG",))
                probe.draft(probe.mode, (max(probe.width // 8, 1), max(probe.height // 8, 1)))
                probe.load()
    except Exception as exc:
        raise InvalidImage(
            "A imagem está corrompida ou incompleta (dados ou metadados EXIF inválidos). Envie o arquivo original.",
            field=field,
            code="corrupt_image",
        ) from exc


def _check_bytes(data: bytes | None, field: str) -> bytes:
    if not data:
        raise InvalidImage("O arquivo está vazio.", field=field, code="empty_file")
    max_bytes = settings.RAIOX_MAX_UPLOAD_BYTES
    if len(data) > max_bytes:
        raise file_too_large(field)
    return data


def inspect_image(data: bytes, *, field: str = "file") -> ImageHeader:
    """Accept or refuse an upload from what it declares, without decoding its pixels (web process).

    Raises ``InvalidImage`` (pt-BR, 4xx) for anything that is not an acceptable X-ray file.
    """
    data = _check_bytes(data, field)
    if _is_dicom(data):
        return _inspect_dicom(data, field)
    img = _open_pillow(data, field)
    source_format = img.format or "?"
    try:
        frames = int(getattr(img, "n_frames", 1) or 1)
    except Exception as exc:
        raise _corrupt(field) from exc
    _check_size(img.width, img.height, field=field)
    _check_structure(data, img, field)
    return ImageHeader(source_format, img.width, img.height, frames)


def decode_image(data: bytes, *, field: str = "file") -> ValidatedImage:
    """Decode and normalise an image fully (worker, staff's reference images): a PNG of the pixels
    only, first DICOM frame only. Raises ``InvalidImage`` for any file that does not decode."""
    header = inspect_image(data, field=field)  # the same refusals first, before any pixel is decoded
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if header.source_format == "DICOM":
                img = _decode_dicom(data, field)
            else:
                img = _open_pillow(data, field)
                img.load()
                img = ImageOps.exif_transpose(img)
            img = _normalise_mode(img)
            _check_size(img.width, img.height, field=field)
            raw = img.tobytes()
            # A fresh image from the pixels: nothing of the file's metadata (EXIF, ICC profile,
            # text chunks, DICOM tags) can travel into what we store.
            clean = Image.frombytes(img.mode, img.size, raw)
            del img
            out = io.BytesIO()
            clean.save(out, format="PNG")
    except InvalidImage:
        raise
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(field) from exc
    except Exception as exc:  # whatever a hostile file makes a decoder throw: it will never decode
        raise _corrupt(field) from exc
    pixel_hash = hashlib.sha256(f"{clean.mode}:{clean.width}x{clean.height}:".encode() + raw).hexdigest()
    return ValidatedImage(
        content=out.getvalue(),
        width=clean.width,
        height=clean.height,
        source_format=header.source_format,
        content_hash=pixel_hash,
    )


def _normalise_mode(img: Image.Image) -> Image.Image:
    # Radiographs are greyscale; keep them so (smaller files), colour photos stay RGB.
    if img.mode in {"I", "I;16", "I;16B", "I;16L", "F"}:
        return _to_8bit(img)
    if img.mode in {"1", "L", "LA"}:
        return img.convert("L")
    return img if img.mode == "RGB" else img.convert("RGB")


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float greyscale (common in TIFF radiographs) stretched to 8 bits."""
    import numpy as np

    arr = np.asarray(img, dtype="float32")
    low, high = float(arr.min()), float(arr.max())
    return Image.fromarray(((arr - low) / (high - low or 1.0) * 255.0).astype(np.uint8))
