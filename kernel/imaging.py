"""One validation for every image that enters the system, whatever the source.

Formats are recognised by content, never by name. The result is a normalised PNG (EXIF orientation
applied, greyscale kept greyscale) that is what we store and embed, so every later step reads one
well-formed format.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from kernel.errors import ApplicationError

# Pillow formats we accept (HEIC and DICOM are handled before Pillow sees the bytes).
PIL_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")
ACCEPTED_LABEL = "JPEG, PNG, WebP, TIFF, BMP, HEIC ou DICOM"


@dataclass(frozen=True)
class ValidatedImage:
    content: bytes  # normalised PNG
    width: int
    height: int
    source_format: str  # what the sender's bytes were: JPEG, PNG, HEIC, DICOM...
    content_hash: str  # sha256 of the decoded pixels: equal pictures, equal hash

    @property
    def filename(self) -> str:
        return "imagem.png"


def _error(message: str, *, field: str, status: int = 400, code: str = "invalid_image") -> ApplicationError:
    return ApplicationError(message, field=field, status=status, code=code)


def size_label(limit: int) -> str:
    """A byte limit as people read it: "20 MB", "200 kB"."""
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):g} MB"
    return f"{max(limit // 1024, 1)} kB"


def file_too_large(field: str = "file") -> ApplicationError:
    """The size cap's one refusal, whether found from a declared size or from the bytes."""
    return _error(
        f"Arquivo muito grande: o limite é {size_label(settings.RAIOX_MAX_UPLOAD_BYTES)}.",
        field=field,
        status=413,
        code="file_too_large",
    )


def _too_many_pixels(field: str) -> ApplicationError:
    return _error(
        "Imagem com dimensões grandes demais para ser processada.", field=field, status=413, code="too_many_pixels"
    )


def _open_dicom(data: bytes, field: str) -> Image.Image:
    import warnings

    import numpy as np
    import pydicom

    try:
        with warnings.catch_warnings():
            # pydicom warns (and logs) about every oddity of a hostile file; the refusal says enough.
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(io.BytesIO(data))
            # Check the declared size before decoding: a compressed DICOM can be a decompression bomb.
            frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
            declared = int(getattr(dataset, "Rows", 0) or 0) * int(getattr(dataset, "Columns", 0) or 0)
            if declared * max(frames, 1) > settings.RAIOX_MAX_IMAGE_PIXELS:
                raise _too_many_pixels(field)
            pixels = dataset.pixel_array.astype("float32")
    except ApplicationError:
        raise
    except Exception as exc:
        raise _error("Arquivo DICOM ilegível ou sem imagem.", field=field, code="corrupt_image") from exc
    if pixels.ndim == 3 and pixels.shape[-1] not in (3, 4):
        pixels = pixels[0]  # multi-frame: the first frame
    low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) / (high - low or 1.0) * 255.0
    if getattr(dataset, "PhotometricInterpretation", "") == "MONOCHROME1":
        scaled = 255.0 - scaled  # MONOCHROME1 stores bone dark: flip to the usual look
    return Image.fromarray(scaled.clip(0, 255).astype(np.uint8))


def _is_dicom(data: bytes) -> bool:
    return len(data) > 132 and data[128:132] == b"DICM"


def _is_heif(data: bytes) -> bool:
    return len(data) > 12 and data[4:8] == b"ftyp" and data[8:12] in {b"heic", b"heix", b"mif1", b"msf1", b"heim"}


def validate_image(data: bytes, *, field: str = "file") -> ValidatedImage:
    """Check and normalise an uploaded X-ray, or raise ApplicationError (pt-BR, 4xx)."""
    max_bytes = settings.RAIOX_MAX_UPLOAD_BYTES
    if not data:
        raise _error("O arquivo está vazio.", field=field, code="empty_file")
    if len(data) > max_bytes:
        raise file_too_large(field)

    max_pixels = settings.RAIOX_MAX_IMAGE_PIXELS
    source_format: str
    try:
        if _is_dicom(data):
            img = _open_dicom(data, field)
            source_format = "DICOM"
        else:
            if _is_heif(data):
                import pillow_heif

                pillow_heif.register_heif_opener()
                formats: tuple[str, ...] = ("HEIF",)
            else:
                formats = PIL_FORMATS
            img = Image.open(io.BytesIO(data), formats=formats)
            source_format = img.format or "?"
            # Check the declared size *before* decoding: a decompression bomb is a small file
            # that claims a huge canvas.
            if img.width * img.height > max_pixels:
                raise _too_many_pixels(field)
            img.load()
    except ApplicationError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard fires at open for huge canvases
        raise _too_many_pixels(field) from exc
    except UnidentifiedImageError as exc:
        raise _error(
            f"O arquivo não é uma imagem reconhecida. Formatos aceitos: {ACCEPTED_LABEL}.",
            field=field,
            code="not_an_image",
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _error(
            "A imagem está corrompida ou incompleta. Envie o arquivo novamente.",
            field=field,
            code="corrupt_image",
        ) from exc

    min_side = settings.RAIOX_MIN_IMAGE_SIDE
    if min(img.size) < min_side:
        raise _error(
            f"Imagem pequena demais para ser analisada (mínimo {min_side} × {min_side} pixels).",
            field=field,
            code="image_too_small",
        )
    if img.width * img.height > max_pixels:
        raise _too_many_pixels(field)

    img = ImageOps.exif_transpose(img)
    # Radiographs are greyscale; keep them so (smaller files), colour photos stay RGB.
    if img.mode in {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}:
        img = img.convert("L") if img.mode not in {"I", "I;16", "I;16B", "I;16L", "F"} else _to_8bit(img)
    elif img.mode != "RGB":
        img = img.convert("RGB")

    pixel_hash = hashlib.sha256(f"{img.mode}:{img.width}x{img.height}:".encode() + img.tobytes()).hexdigest()
    out = io.BytesIO()
    img.save(out, format="PNG")
    return ValidatedImage(
        content=out.getvalue(),
        width=img.width,
        height=img.height,
        source_format=source_format,
        content_hash=pixel_hash,
    )


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float greyscale (common in TIFF radiographs) stretched to 8 bits."""
    import numpy as np

    arr = np.asarray(img, dtype="float32")
    low, high = float(arr.min()), float(arr.max())
    return Image.fromarray(((arr - low) / (high - low or 1.0) * 255.0).astype(np.uint8))
