"""One validation for every image that enters the system, whatever the source, in two steps.

- ``inspect_image`` runs in the web process: it reads what the file *declares* (format, dimensions,
  frames, samples per pixel × bits allocated, EXIF) and accepts or refuses the file without
  decoding its pixels, so a small file declaring a huge canvas costs the web process nothing.
  Before any reader is trusted with the bytes, each format's framing is walked with explicit caps
  (``_walk_structure``; the caps are constants below, "the structure, walked with caps"): TIFF
  pages (IFDs) and tags, JPEG markers and fill bytes, PNG chunks before IDAT and in all, WebP
  chunks, HEIF boxes, DICOM elements and sequence depth (a deflated DICOM is refused). The same
  walk checks what the header declares against what the file holds: an uncompressed TIFF's or
  BMP's pixel bytes, every strip or tile inside the file, a RIFF's size, a JPEG reaching its EOI
  (DICOM's pixel data is checked in ``_inspect_dicom``: uncompressed, its length; compressed, the
  declared size of every frame, a fragment per frame and the first codestream's own size). Its
  work is one pass over lengths and offsets, bounded by the caps: a crafted file is refused in
  milliseconds (``python -m bench.crafted --before`` prints each case beside the readers alone).
  Two cheap structural checks follow: a PNG's chunk checksums (no inflating) and a JPEG
  decoded at 1/8 scale (at most 1/64 of its pixels), which catch truncated uploads at once.
- ``decode_image`` runs in the worker (and for staff's reference images): the full decode, first
  DICOM frame only, normalised to a PNG holding pixels only (EXIF orientation applied, then every
  metadata block dropped: EXIF, ICC, text chunks, DICOM tags), greyscale kept greyscale. It is on
  the worker's hot path (every X-ray of a Jotform burst goes through it), so it is written for
  speed: a fast PNG encode, and no encode at all for a PNG already holding nothing but its pixels
  (``bench.imaging`` prints the figures beside the old settings). Concurrent decodes of a process
  are bounded by memory: each holds its header's estimate (width x height x bands) of
  ``RAIOX_WORKER_DECODE_MEMORY_MB`` while it runs (``_MemoryBudget``).

Both raise ``InvalidImage`` (a 4xx ``ApplicationError`` with a Portuguese message) and nothing
else for a bad file: whatever a hostile file makes a decoder throw is translated, so intake answers
4xx and the worker knows the file is poison (failing it at once, never retrying).

Formats are recognised by content, never by name.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageMode, ImageOps, UnidentifiedImageError

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

# How the normalised PNG is compressed. Pillow's default (zlib level 6, Z_FILTERED) made the encode
# ~85 % of ``decode_image`` (~115 ms of 130 for a 1900 × 1250 radiograph), capping a worker's
# drain of a burst. Measured by ``bench.imaging`` on radiograph-like images:
# - greyscale: level 1 with the run-length strategy is ~2× faster on a grainy radiograph and ~9×
#   on a smooth one, at the same size or smaller (sensor grain defeats LZ77's matches anyway, and
#   flat borders still shrink to runs);
# - colour: run-length loses the R = G = B repeats of a greyscale X-ray saved as RGB (files 1.7×
#   larger), so RGB keeps Pillow's strategy at level 1 (5-6× faster, ~8 % larger).
# The rest of the encode is Pillow's per-row filter choice, which has no setting. The content hash
# is over the decoded pixels, never these bytes, so stored rows keep matching new ones.
PNG_SAVE_OPTIONS: dict[str, dict[str, int]] = {
    "L": {"compress_level": 1, "compress_type": zlib.Z_RLE},
    "RGB": {"compress_level": 1},
}


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
    orientation: int = 1  # EXIF orientation (1: as stored; 5-8: the decode turns it a quarter)
    pixel_bytes: int = 1  # bytes a decoded pixel takes (bands x bytes a band; DICOM: float32 samples)

    @property
    def decoded_bytes(self) -> int:
        """What decoding this file holds in memory, estimated from the header: width x height x
        bands (x bytes a band) of the one frame decoded (``decode_image``'s memory budget)."""
        return self.width * self.height * self.pixel_bytes

    @property
    def oriented_size(self) -> tuple[int, int]:
        """The size of the picture ``decode_image`` makes of this file (it applies the EXIF
        orientation): what regions and crops are measured in, known without decoding."""
        if self.orientation in (5, 6, 7, 8):
            return self.height, self.width
        return self.width, self.height

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
    if encapsulated:
        try:
            value = dataset.PixelData
        except Exception as exc:
            raise _corrupt_dicom(field) from exc
        _check_encapsulated(value, rows=rows, columns=columns, samples=samples, bits=bits, frames=frames, field=field)
    else:
        # Uncompressed: the pixel data must hold every frame it declares, or the file is cut short.
        length = getattr(pixel_element, "length", None)
        if length is None:
            length = len(getattr(pixel_element, "value", b"") or b"")
        if length < rows * columns * samples * (bits // 8) * frames:
            raise _corrupt_dicom(field)
    # ``_decode_dicom`` turns the frame into float32 samples.
    return ImageHeader("DICOM", columns, rows, frames, pixel_bytes=samples * 4)


# What the compressed frames of one DICOM may declare in all: the decoded bytes of the largest
# frame accepted (RAIOX_MAX_IMAGE_PIXELS samples of 32 bits). A decoder is never handed a file
# whose header promises more, however few bytes its fragments hold.
DICOM_MAX_SAMPLE_BYTES = 4  # 32 bits
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}  # SOFn, JPEG-LS SOF55
_J2K_SIZ = b"\xff\x4f\xff\x51"  # SOC then SIZ: the start of a JPEG 2000 codestream


def _check_encapsulated(
    value: bytes, *, rows: int, columns: int, samples: int, bits: int, frames: int, field: str
) -> None:
    """Compressed pixel data checked against what the header declares before pydicom's decoder sees
    it: every frame's decoded size within the limit, a fragment (at least) for each frame, a basic
    offset table of one offset a frame, and the first frame's codestream (JPEG, JPEG-LS, JPEG 2000)
    of the declared rows x columns x samples, so a small file cannot make the decoder allocate a
    canvas the header never declared."""
    from pydicom.encaps import generate_fragments

    declared = rows * columns * samples * (bits // 8) * frames
    if declared > settings.RAIOX_MAX_IMAGE_PIXELS * DICOM_MAX_SAMPLE_BYTES:
        raise _too_many_pixels(field)
    try:
        # The walk (``_walk_dicom``) bounded the items already: at most DICOM_MAX_ELEMENTS.
        offsets, *fragments = list(generate_fragments(value))
    except Exception as exc:
        raise _corrupt_dicom(field) from exc
    if len(fragments) < frames or (offsets and len(offsets) != 4 * frames):
        raise _corrupt_dicom(field)
    size = _codestream_size(fragments[0])
    if size is not None and size != (columns, rows, samples):
        raise _corrupt_dicom(field)


def _codestream_size(fragment: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from a JPEG / JPEG-LS frame header or a JPEG 2000 SIZ marker;
    None for a codestream whose size is not in such a header (RLE: decoded to the declared size).
    A JPEG that ends or runs past its marker cap before its frame header declares nothing: (0, 0, 0)."""
    at = fragment.find(_J2K_SIZ, 0, 1024)
    if at >= 0:
        if len(fragment) < at + 42:
            return 0, 0, 0
        width, height, x0, y0 = struct.unpack_from(">IIII", fragment, at + 8)
        (components,) = struct.unpack_from(">H", fragment, at + 40)
        return width - x0, height - y0, components
    if not fragment.startswith(b"\xff\xd8"):
        return None
    pos, markers = 2, 0
    while pos + 4 <= len(fragment) and markers < JPEG_MAX_MARKERS:
        if fragment[pos] != 0xFF:
            return 0, 0, 0
        marker = fragment[pos + 1]
        if marker == 0xFF:  # a fill byte
            pos, markers = pos + 1, markers + 1
            continue
        markers += 1
        if marker in _JPEG_FRAME_MARKERS:
            if pos + 10 > len(fragment):
                return 0, 0, 0
            height, width, components = struct.unpack_from(">HHB", fragment, pos + 5)
            return width, height, components
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", fragment, pos + 2)
        pos += 2 + length
    return 0, 0, 0


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


def _structure_error(field: str) -> InvalidImage:
    return InvalidImage(
        "A imagem está corrompida ou incompleta (dados ou metadados EXIF inválidos). Envie o arquivo original.",
        field=field,
        code="corrupt_image",
    )


def _check_structure(data: bytes, img: Image.Image, field: str, *, probe_jpeg: bool = True) -> None:
    """The cheap checks a header allows: EXIF parses, the PNG's chunks are whole, the JPEG's scan
    data reaches its end (decoded at 1/8 scale: at most 1/64 of the pixels in memory; skipped
    when the caller decodes it fully next)."""
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
            elif img.format == "JPEG" and probe_jpeg:
                probe = Image.open(io.BytesIO(data), formats=("JPEG",))
                probe.draft(probe.mode, (max(probe.width // 8, 1), max(probe.height // 8, 1)))
                probe.load()
    except Exception as exc:
        raise _structure_error(field) from exc


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
    return _inspect(data, field)


def _inspect(data: bytes, field: str, *, probe_jpeg: bool = True) -> ImageHeader:
    data = _check_bytes(data, field)
    _walk_structure(data, field)  # bounded work before any decoder reads the file
    if _is_dicom(data):
        return _inspect_dicom(data, field)
    img = _open_pillow(data, field)
    source_format = img.format or "?"
    try:
        frames = int(getattr(img, "n_frames", 1) or 1)
    except Exception as exc:
        raise _corrupt(field) from exc
    _check_size(img.width, img.height, field=field)
    _check_structure(data, img, field, probe_jpeg=probe_jpeg)
    return ImageHeader(source_format, img.width, img.height, frames, _orientation(img), _pixel_bytes(img.mode))


def _pixel_bytes(mode: str) -> int:
    """Bytes a pixel of ``mode`` takes decoded, and at least 3: a palette or greyscale-with-alpha
    image is made RGB by ``_normalise_mode``."""
    try:
        spec = ImageMode.getmode(mode)
        size = len(spec.bands) * int(spec.typestr[-1])
    except Exception:
        size = 4
    return max(size, 1 if mode == "L" else 3)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation read from the header (already parsed by ``_check_structure``); a PNG's
    eXIf chunk only when found before the pixels, as there."""
    if img.format == "PNG" and "exif" not in img.info:
        return 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = img.getexif().get(0x0112, 1)
        return value if isinstance(value, int) and 1 <= value <= 8 else 1
    except Exception:
        return 1


def decode_image(data: bytes, *, field: str = "file") -> ValidatedImage:
    """Decode and normalise an image fully (worker, staff's reference images): a PNG of the pixels
    only, first DICOM frame only. Raises ``InvalidImage`` for any file that does not decode."""
    # The same refusals as at intake first, before any pixel is decoded; all but the JPEG probe,
    # which the full decode below makes needless (see ``_load_pillow``).
    header = _inspect(data, field, probe_jpeg=False)
    with _decode_budget.hold(header.decoded_bytes):
        return _decode(data, header, field)


class _MemoryBudget:
    """Concurrent decodes of one process bounded by the memory they take, not only by their number:
    each holds its header's estimate (``ImageHeader.decoded_bytes``) of a budget of
    ``RAIOX_WORKER_DECODE_MEMORY_MB`` while it runs, so two huge films wait for each other while
    small ones run side by side (the worker's prepare threads decode a batch at once). A film
    whose estimate alone exceeds the budget waits for the others, then runs alone."""

    def __init__(self) -> None:
        self._held = 0
        self._free = threading.Condition()

    @contextmanager
    def hold(self, estimate: int) -> Iterator[None]:
        budget = max(1, settings.RAIOX_WORKER_DECODE_MEMORY_MB) * 1024 * 1024
        amount = max(1, min(estimate, budget))
        with self._free:
            self._free.wait_for(lambda: self._held + amount <= budget)
            self._held += amount
        try:
            yield
        finally:
            with self._free:
                self._held -= amount
                self._free.notify_all()


_decode_budget = _MemoryBudget()


def _decode(data: bytes, header: ImageHeader, field: str) -> ValidatedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if header.source_format == "DICOM":
                img = _decode_dicom(data, field)
            else:
                img = _open_pillow(data, field)
                _load_pillow(img, header.source_format, field)
                img = ImageOps.exif_transpose(img)
            img = _normalise_mode(img)
            _check_size(img.width, img.height, field=field)
            mode, size = img.mode, img.size
            raw = img.tobytes()
            del img
            if header.source_format == "PNG" and _holds_pixels_only(data, mode=mode, size=size):
                # Nothing but these pixels in the sender's PNG (proved chunk by chunk): storing it
                # as it is saves the encode, and stores exactly what the encode would have.
                content = data
            else:
                # A fresh image from the pixels: nothing of the file's metadata (EXIF, ICC profile,
                # text chunks, DICOM tags) can travel into what we store.
                clean = Image.frombytes(mode, size, raw)
                out = io.BytesIO()
                clean.save(out, format="PNG", **PNG_SAVE_OPTIONS[mode])
                del clean
                content = out.getvalue()
    except InvalidImage:
        raise
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(field) from exc
    except Exception as exc:  # whatever a hostile file makes a decoder throw: it will never decode
        raise _corrupt(field) from exc
    # Over the normalised pixels, never the file's bytes: how the PNG is compressed (or whether
    # the sender's own PNG is kept) changes nothing here, so old rows and new ones still match.
    pixel_hash = hashlib.sha256(f"{mode}:{size[0]}x{size[1]}:".encode() + raw).hexdigest()
    return ValidatedImage(
        content=content,
        width=size[0],
        height=size[1],
        source_format=header.source_format,
        content_hash=pixel_hash,
    )


def _load_pillow(img: Image.Image, source_format: str, field: str) -> None:
    """Decode every pixel. For a JPEG this also stands for intake's 1/8-scale probe, which reads
    the same scan data with the same decoder (only the inverse DCT is smaller): a file the probe
    refuses fails here, and gets the probe's refusal. Skipping the probe saves the worker about
    half a decode (~15 ms for a 3000 × 1500 JPEG)."""
    try:
        img.load()
    except Exception as exc:
        if source_format != "JPEG" or isinstance(exc, Image.DecompressionBombError):
            raise
        raise _structure_error(field) from exc


# --- the structure, walked with caps before any decoder is trusted ------------------------------
# Pillow's and pydicom's readers are written for honest files: a TIFF chaining 50 000 pages, a
# JPEG of a million empty markers, a PNG of a million private chunks before its pixels or a DICOM
# of 600 000 empty elements each cost them seconds of CPU or hundreds of MB. ``_walk_structure``
# reads each container's own framing (lengths and offsets only, never the pixels) in one pass of
# bounded work and refuses the file (400 ``corrupt_image``) when a cap below is passed, or when the
# header declares more pixel bytes than the file holds. Caps (far above any X-ray we have seen):
PNG_MAX_CHUNKS_BEFORE_IDAT = 256  # IHDR, palette, colour and text chunks: an X-ray has < 20
PNG_MAX_CHUNKS = 20_000  # all chunks (IDAT of 1 kB each across a 20 MB file)
JPEG_MAX_MARKERS = 2_000  # segments and fill bytes outside the scan data (progressive: ~10 scans)
TIFF_MAX_PAGES = 64  # IFDs in the chain (Pillow's page count is quadratic in them)
TIFF_MAX_ENTRIES = 4_096  # tags over all IFDs walked (an X-ray page has ~20)
WEBP_MAX_CHUNKS = 1_024  # RIFF chunks (one image: 1 to 4)
HEIF_MAX_BOXES = 1_024  # top-level ISO BMFF boxes (a HEIC has ~4)
DICOM_MAX_ELEMENTS = 10_000  # data elements, nested ones included (a radiograph has ~100-500)
DICOM_MAX_DEPTH = 8  # sequences within sequences


def _walk_structure(data: bytes, field: str) -> None:
    """Refuse a file whose framing passes a cap or declares more than it holds (module caps above)."""
    try:
        if _is_dicom(data):
            _walk_dicom(data, field)
        elif data.startswith(PNG_SIGNATURE):
            _walk_png(data, field)
        elif data.startswith(b"\xff\xd8"):
            _walk_jpeg(data, field)
        elif data[:4] in (b"II*\x00", b"MM\x00*"):
            _walk_tiff(data, field)
        elif data.startswith(b"BM"):
            _walk_bmp(data, field)
        elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            _walk_riff(data, field)
        elif _is_heif(data):
            _walk_boxes(data, field)
    except (struct.error, IndexError, ValueError) as exc:  # a length or offset pointing outside the file
        raise _corrupt(field) from exc


def _too_complex(field: str) -> InvalidImage:
    return InvalidImage(
        "A estrutura do arquivo é complexa demais para uma radiografia (partes ou páginas demais).",
        field=field,
        code="too_complex",
    )


def _walk_png(data: bytes, field: str) -> None:
    pos, chunks, seen_idat = len(PNG_SIGNATURE), 0, False
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        chunks += 1
        if kind == b"IDAT":
            seen_idat = True
        elif not seen_idat and chunks > PNG_MAX_CHUNKS_BEFORE_IDAT:
            raise _too_complex(field)
        if chunks > PNG_MAX_CHUNKS:
            raise _too_complex(field)
        pos += 12 + length
        if kind == b"IEND":
            return
    raise _corrupt(field)  # cut short: no IEND


# Scan data ends at the first 0xFF not followed by 0x00 (a stuffed byte) or a restart marker.
_JPEG_SCAN_END = re.compile(rb"\xff(?=[^\x00\xd0-\xd7])")


def _walk_jpeg(data: bytes, field: str) -> None:
    pos, count, size = 2, 0, len(data)
    while True:
        if pos >= size:
            raise _corrupt(field)  # no EOI
        if data[pos] != 0xFF:
            raise _corrupt(field)
        while pos < size and data[pos] == 0xFF:  # the marker's prefix, and any fill bytes before it
            pos += 1
            count += 1
            if count > JPEG_MAX_MARKERS:
                raise _too_complex(field)
        if pos >= size:
            raise _corrupt(field)
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI: what follows (a camera's trailer) is not ours to read
            return
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            continue  # standalone markers
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2 or pos + length > size:
            raise _corrupt(field)
        pos += length
        if marker == 0xDA:  # start of scan: skip its entropy-coded data to the next marker
            found = _JPEG_SCAN_END.search(data, pos)
            if found is None:
                raise _corrupt(field)
            pos = found.start()


# TIFF field types -> bytes per value (SHORT, LONG, and the others only for their size).
_TIFF_TYPE_SIZES = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 8,
    11: 4,
    12: 8,
    13: 4,
    16: 8,
    17: 8,
    18: 8,
}


def _tiff_values(data: bytes, order: str, entry: int) -> list[int]:
    """The SHORT/LONG values of one 12-byte IFD entry (inline or at their offset)."""
    kind, count = struct.unpack_from(f"{order}HI", data, entry + 2)
    if kind not in (3, 4):
        return []
    width = _TIFF_TYPE_SIZES[kind]
    if count * width > len(data):
        raise ValueError("values past the end of the file")
    at = entry + 8 if count * width <= 4 else struct.unpack_from(f"{order}I", data, entry + 8)[0]
    return list(struct.unpack_from(f"{order}{count}{'H' if kind == 3 else 'I'}", data, at))


def _walk_tiff(data: bytes, field: str) -> None:
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(f"{order}I", data, 4)
    seen: set[int] = set()
    pages = entries = 0
    while offset:
        if offset in seen:
            raise _corrupt(field)  # a chain that loops
        seen.add(offset)
        pages += 1
        if pages > TIFF_MAX_PAGES:
            raise _too_complex(field)
        (count,) = struct.unpack_from(f"{order}H", data, offset)
        entries += count
        if entries > TIFF_MAX_ENTRIES:
            raise _too_complex(field)
        if offset + 2 + 12 * count + 4 > len(data):
            raise _corrupt(field)
        if pages == 1:
            _check_tiff_page(data, order, offset, count, field)
        (offset,) = struct.unpack_from(f"{order}I", data, offset + 2 + 12 * count)


def _check_tiff_page(data: bytes, order: str, offset: int, count: int, field: str) -> None:
    """The first page (the one decoded): its strips or tiles lie inside the file, and an
    uncompressed page holds every byte of pixels it declares."""
    tags: dict[int, list[int]] = {}
    for n in range(count):
        entry = offset + 2 + 12 * n
        (tag,) = struct.unpack_from(f"{order}H", data, entry)
        if tag in (256, 257, 258, 259, 273, 277, 279, 324, 325):
            tags[tag] = _tiff_values(data, order, entry)
    offsets, counts = tags.get(273) or tags.get(324) or [], tags.get(279) or tags.get(325) or []
    if not offsets or len(offsets) != len(counts):
        raise _corrupt(field)
    if any(start + length > len(data) for start, length in zip(offsets, counts, strict=True)):
        raise _corrupt(field)
    if (tags.get(259) or [1])[0] == 1 and 273 in tags:
        width, height = (tags.get(256) or [0])[0], (tags.get(257) or [0])[0]
        bits = sum(tags.get(258) or [1]) or 1
        if sum(counts) < -(-width * bits // 8) * height:
            raise _corrupt(field)


def _walk_bmp(data: bytes, field: str) -> None:
    (pixel_offset,) = struct.unpack_from("<I", data, 10)
    (header_size,) = struct.unpack_from("<I", data, 14)
    if header_size == 12:  # OS/2 core header
        width, height, _planes, bits = struct.unpack_from("<HHHH", data, 18)
        compression = 0
    else:
        width, height, _planes, bits, compression = struct.unpack_from("<iiHHI", data, 18)
    if pixel_offset >= len(data):
        raise _corrupt(field)  # a header and no pixels
    if compression in (0, 3, 6):  # uncompressed (bit fields are uncompressed too)
        row = (abs(width) * bits + 31) // 32 * 4
        if pixel_offset + row * abs(height) > len(data):
            raise _corrupt(field)


def _walk_riff(data: bytes, field: str) -> None:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size + 8 > len(data):
        raise _corrupt(field)
    pos, chunks, end = 12, 0, riff_size + 8
    while pos + 8 <= end:
        (length,) = struct.unpack_from("<I", data, pos + 4)
        chunks += 1
        if chunks > WEBP_MAX_CHUNKS:
            raise _too_complex(field)
        pos += 8 + length + (length & 1)
        if pos > end:
            raise _corrupt(field)


def _walk_boxes(data: bytes, field: str) -> None:
    pos, boxes = 0, 0
    while pos + 8 <= len(data):
        (size,) = struct.unpack_from(">I", data, pos)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
        elif size == 0:
            return  # the last box runs to the end of the file
        if size < 8:
            raise _corrupt(field)
        boxes += 1
        if boxes > HEIF_MAX_BOXES:
            raise _too_complex(field)
        pos += size
    if pos != len(data):
        raise _corrupt(field)


# DICOM VRs whose explicit length takes 4 bytes (after 2 reserved ones).
_DICOM_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_DICOM_ITEM, _DICOM_ITEM_END, _DICOM_SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_DEFLATED = "1.2.840.10008.1.2.1.99"


def _walk_dicom(data: bytes, field: str) -> None:
    """Every data element of the file meta (explicit VR little endian) and of the dataset (in its
    transfer syntax), sequences and encapsulated pixel data included, counted and bounded."""
    walk = _DicomWalk(data, field)
    pos = walk.elements(132, len(data), depth=0, meta=True)
    if walk.syntax == _DEFLATED:
        raise InvalidImage(
            "Arquivo DICOM comprimido por inteiro (deflate) não é aceito; envie-o sem essa compressão.",
            field=field,
            code="unsupported_dicom",
        )
    walk.explicit = walk.syntax != "1.2.840.10008.1.2"
    walk.order = ">" if walk.syntax == "1.2.840.10008.1.2.2" else "<"
    walk.elements(pos, len(data), depth=0)


class _DicomWalk:
    def __init__(self, data: bytes, field: str):
        self.data, self.field = data, field
        self.explicit, self.order, self.syntax, self.count = True, "<", "", 0

    def _counted(self) -> None:
        self.count += 1
        if self.count > DICOM_MAX_ELEMENTS:
            raise _too_complex(self.field)

    def elements(self, pos: int, end: int, *, depth: int, meta: bool = False) -> int:
        """Walk data elements from ``pos`` to ``end`` or past an item delimiter; returns where it
        stopped. ``meta``: the file meta group (always explicit VR little endian), stopping at
        the first element of another group."""
        from pydicom.datadict import dictionary_VR

        data = self.data
        order = "<" if meta else self.order
        while pos + 8 <= end:
            group, element = struct.unpack_from(f"{order}HH", data, pos)
            tag = group << 16 | element
            if meta and group != 0x0002:
                return pos
            self._counted()
            if tag == _DICOM_ITEM_END:
                return pos + 8
            if self.explicit or meta:
                vr = data[pos + 4 : pos + 6]
                if vr in _DICOM_LONG_VRS:
                    (length,) = struct.unpack_from(f"{order}I", data, pos + 8)
                    pos += 12
                else:
                    (length,) = struct.unpack_from(f"{order}H", data, pos + 6)
                    pos += 8
            else:
                (length,) = struct.unpack_from(f"{order}I", data, pos + 4)
                pos += 8
                try:
                    vr = b"SQ" if dictionary_VR(tag) == "SQ" else b"UN"
                except KeyError:
                    vr = b"UN"
            if length == _UNDEFINED or vr == b"SQ":
                # A sequence, or encapsulated pixel data: items, each a dataset or a fragment.
                if depth + 1 > DICOM_MAX_DEPTH:
                    raise _too_complex(self.field)
                stop = end if length == _UNDEFINED else pos + length
                if stop > end:
                    raise _corrupt(self.field)
                fragments = tag == 0x7FE00010
                pos = self.items(pos, stop, depth=depth + 1, fragments=fragments, delimited=length == _UNDEFINED)
                continue
            if pos + length > end:
                raise _corrupt(self.field)
            if meta and tag == 0x00020010:
                self.syntax = data[pos : pos + length].rstrip(b"\x00 ").decode("ascii", "replace")
            pos += length
        return pos

    def items(self, pos: int, end: int, *, depth: int, fragments: bool, delimited: bool) -> int:
        data, order = self.data, self.order
        while pos + 8 <= end:
            group, element = struct.unpack_from(f"{order}HH", data, pos)
            tag = group << 16 | element
            (length,) = struct.unpack_from(f"{order}I", data, pos + 4)
            pos += 8
            self._counted()
            if tag == _DICOM_SEQUENCE_END:
                return pos
            if tag != _DICOM_ITEM:
                raise _corrupt(self.field)
            if fragments:  # a compressed frame's bytes: opaque
                if length == _UNDEFINED or pos + length > end:
                    raise _corrupt(self.field)
                pos += length
            elif length == _UNDEFINED:
                pos = self.elements(pos, end, depth=depth)
            else:
                if pos + length > end:
                    raise _corrupt(self.field)
                self.elements(pos, pos + length, depth=depth)
                pos += length
        if delimited:
            raise _corrupt(self.field)  # no sequence delimiter before the end of the file
        return pos


# --- a PNG that already holds pixels only -------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {"L": (0, 1), "RGB": (2, 3)}  # normalised mode -> (IHDR colour type, bytes a pixel)
_INFLATE_INPUT = 1 << 16  # compressed bytes fed at a time
_INFLATE_STEP = 1 << 20  # most inflated bytes held at a time


def _holds_pixels_only(data: bytes, *, mode: str, size: tuple[int, int]) -> bool:
    """Whether a PNG is, byte for byte, one we could have written for these normalised pixels.

    True only for: the signature; IHDR declaring ``size``, 8 bits, ``mode``'s colour type, no
    interlace; IDAT chunks only, whose zlib stream inflates to exactly the image's rows and ends
    with the last of them; an empty IEND, and not one byte after it; every chunk checksum right.
    Then no text (tEXt/iTXt/zTXt), EXIF, ICC profile, private chunk or bytes hidden after the
    image or after the compressed stream can be in it: the pixels are all it says. (What remains
    is how the pixels were compressed, which says no more than the pixels could themselves.)
    Anything else is re-encoded: that is always the safe answer.
    """
    view = memoryview(data)
    if bytes(view[:8]) != PNG_SIGNATURE:
        return False
    chunks: list[tuple[bytes, memoryview]] = []
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(view):
        (length,) = struct.unpack_from(">I", view, pos)
        kind = bytes(view[pos + 4 : pos + 8])
        end = pos + 8 + length
        if end + 4 > len(view):
            return False
        body = view[pos + 8 : end]
        if zlib.crc32(body, zlib.crc32(kind)) != struct.unpack_from(">I", view, end)[0]:
            return False
        chunks.append((kind, body))
        pos = end + 4
        if kind == b"IEND":
            break
    if pos != len(view) or len(chunks) < 3:
        return False  # bytes after IEND, or no IEND
    kinds = [kind for kind, _ in chunks]
    if kinds[0] != b"IHDR" or kinds[-1] != b"IEND" or len(chunks[-1][1]) or set(kinds[1:-1]) != {b"IDAT"}:
        return False
    if len(chunks[0][1]) != 13:
        return False
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    colour_type, bytes_per_pixel = _PNG_COLOUR_TYPES.get(mode, (-1, 0))
    if (width, height) != size or (depth, colour, compression, filtering, interlace) != (8, colour_type, 0, 0, 0):
        return False
    expected = height * (1 + width * bytes_per_pixel)  # a filter byte, then the row's samples
    inflater = zlib.decompressobj()
    produced = 0
    try:
        for _, body in chunks[1:-1]:
            # Fed a slice at a time, each inflated a step at a time: memory stays bounded whatever
            # the stream (one IDAT of the whole image, or a hostile one inflating 1000 to 1).
            for start in range(0, len(body), _INFLATE_INPUT):
                if inflater.eof:
                    return False  # compressed bytes after the end of the stream
                pending: bytes | memoryview = body[start : start + _INFLATE_INPUT]
                while pending:
                    produced += len(inflater.decompress(pending, _INFLATE_STEP))
                    if produced > expected or inflater.unused_data:
                        return False  # more rows than the image has, or bytes after the stream
                    pending = inflater.unconsumed_tail
        produced += len(inflater.flush())  # the little zlib may still hold after the last byte in
    except zlib.error:
        return False
    return inflater.eof and not inflater.unused_data and produced == expected


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
