"""The CLIP image embedder (open_clip). Worker processes only: web processes never import this.

The model is built once per process, lazily, on the first call of ``get_embedder()``.

Weights: ``RAIOX_CLIP_PRETRAINED`` is an open_clip tag (looked up in ``RAIOX_CLIP_CACHE_DIR``,
downloaded there by ``manage.py fetch_model``) or a path to a local checkpoint. We never let
open_clip download at load time: when it cannot, it silently initialises random weights. Without
weights, only ``RAIOX_ALLOW_UNTRAINED_MODEL=1`` allows the same architecture with seeded,
untrained weights, and the model id then says so.

Speed (CPU workers): ``RAIOX_CLIP_QUANTIZE=int8`` runs torch's dynamic int8 quantization of the
``nn.Linear`` layers (the transformer's MLPs: most of ViT-B-32's arithmetic; weights int8,
activations quantized per batch), ``RAIOX_TORCH_THREADS`` sets torch's intra-op threads and
``RAIOX_CLIP_CHANNELS_LAST`` the memory layout. A quantized model keeps the model id: its vectors
are an approximation of the same model's, searched against the same catalogue, which is only
acceptable while bench/embedding.py shows cosine >= 0.99 and the same top 3 against fp32; fp32
stays the default.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

UNTRAINED_SEED = 0
UNTRAINED_TAG = f"untrained-seed{UNTRAINED_SEED}"


QUANTIZE_CHOICES = ("", "int8")


class WeightsUnavailable(ImproperlyConfigured):
    pass


@dataclass(frozen=True)
class ModelSpec:
    architecture: str
    pretrained: str  # tag or checkpoint path
    weights_path: Path | None  # None: untrained

    @property
    def untrained(self) -> bool:
        return self.weights_path is None

    @property
    def model_id(self) -> str:
        """Recorded next to every embedding: embeddings of different ids are never compared."""
        if self.untrained:
            return f"{self.architecture}/{UNTRAINED_TAG}"
        if Path(self.pretrained).suffix:  # a checkpoint path: name it by file name
            return f"{self.architecture}/{Path(self.pretrained).name}"
        return f"{self.architecture}/{self.pretrained}"


HF_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def pretrained_cfg(architecture: str, tag: str) -> dict:
    import open_clip

    cfg = open_clip.get_pretrained_cfg(architecture, tag)
    if not cfg:
        raise ImproperlyConfigured(
            f"RAIOX_CLIP_PRETRAINED={tag!r} is not an open_clip tag for {architecture!r} "
            f"(known: {', '.join(open_clip.list_pretrained_tags_by_model(architecture))}) nor a file."
        )
    return cfg


def _cached_weights(architecture: str, tag: str, cache_dir: Path) -> Path | None:
    """The weights file for an open_clip tag if it is already in the cache — never a download
    (huggingface_hub would retry for ~45 s without a network, and open_clip would then silently
    fall back to random weights)."""
    from huggingface_hub import try_to_load_from_cache

    cfg = pretrained_cfg(architecture, tag)
    hub = cfg.get("hf_hub", "")
    if hub:
        repo_id, filename = os.path.split(hub)
        for name in (filename,) if filename else HF_WEIGHT_FILES:
            found = try_to_load_from_cache(repo_id, name, cache_dir=str(cache_dir))
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    url = cfg.get("url", "")
    if url:
        local = cache_dir / os.path.basename(url)
        if local.is_file():
            return local
    return None


def resolve_spec() -> ModelSpec:
    """Decide which weights this process will run, or raise naming the setting to change."""
    architecture = settings.RAIOX_CLIP_MODEL
    pretrained = settings.RAIOX_CLIP_PRETRAINED
    candidate = Path(pretrained).expanduser()
    weights: Path | None
    if candidate.suffix or os.sep in pretrained:
        weights = candidate if candidate.is_file() else None
    else:
        weights = _cached_weights(architecture, pretrained, Path(settings.RAIOX_CLIP_CACHE_DIR))
    if weights is None and not settings.RAIOX_ALLOW_UNTRAINED_MODEL:
        raise WeightsUnavailable(
            f"CLIP weights {pretrained!r} for {architecture} are not available in "
            f"{settings.RAIOX_CLIP_CACHE_DIR}. Run `python manage.py fetch_model` (needs internet), or set "
            "RAIOX_CLIP_PRETRAINED to a local checkpoint file. For development only, "
            "RAIOX_ALLOW_UNTRAINED_MODEL=1 runs untrained weights."
        )
    return ModelSpec(architecture=architecture, pretrained=pretrained, weights_path=weights)


def pick_device() -> str:
    import torch

    requested = settings.RAIOX_CLIP_DEVICE
    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """Turns images into 512-d, L2-normalised float32 vectors with one open_clip model."""

    def __init__(self, spec: ModelSpec, device: str, *, quantize: str | None = None, channels_last: bool | None = None):
        import open_clip
        import torch

        started = time.perf_counter()
        self.spec = spec
        self.device = device
        self.quantize = settings.RAIOX_CLIP_QUANTIZE if quantize is None else quantize
        self.channels_last = settings.RAIOX_CLIP_CHANNELS_LAST if channels_last is None else channels_last
        if self.quantize not in QUANTIZE_CHOICES:
            raise ImproperlyConfigured(f"RAIOX_CLIP_QUANTIZE={self.quantize!r}: use one of {QUANTIZE_CHOICES}.")
        if self.quantize and device != "cpu":
            raise ImproperlyConfigured("RAIOX_CLIP_QUANTIZE=int8 is a CPU optimisation: unset it on GPU workers.")
        if settings.RAIOX_TORCH_THREADS:
            torch.set_num_threads(settings.RAIOX_TORCH_THREADS)
        if spec.untrained:
            logger.warning("CLIP: running %s with UNTRAINED weights: results are not meaningful", spec.model_id)
            torch.manual_seed(UNTRAINED_SEED)  # same untrained weights in every process
            model, _, preprocess = open_clip.create_model_and_transforms(spec.architecture, pretrained=None)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.architecture, pretrained=str(spec.weights_path)
            )
        model = model.to(device).eval()
        if self.quantize == "int8":
            model = _quantize_int8(model)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.preprocess = preprocess
        self.build_seconds = time.perf_counter() - started
        logger.info(
            "CLIP: %s%s ready on %s in %.1f s",
            spec.model_id,
            " (int8)" if self.quantize else "",
            device,
            self.build_seconds,
        )

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def untrained(self) -> bool:
        return self.spec.untrained

    @staticmethod
    def load_image(data: bytes) -> Image.Image:
        img = Image.open(io.BytesIO(data))
        img = ImageOps.exif_transpose(img)
        # Radiographs are greyscale: CLIP expects three channels.
        return img.convert("RGB")

    def embed_images(self, images: list) -> list[list[float]]:
        import torch

        # Shim until the canonical-view change of the embedder lands: a CanonicalView is embedded
        # as its framed picture.
        images = [getattr(item, "image", item) for item in images]
        if not images:
            return []
        batch = torch.stack([self.preprocess(img) for img in images]).to(self.device)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            features = self.model.encode_image(batch).float()
            features = torch.nn.functional.normalize(features, dim=-1)
        return features.cpu().tolist()

    def embed_bytes(self, data: bytes) -> list[float]:
        return self.embed_images([self.load_image(data)])[0]


def _quantize_int8(model):
    """Dynamic int8 quantization of every ``nn.Linear`` (torch's eager-mode API)."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the eager API still ships in torch.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


_embedder: Embedder | None = None
_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process's one Embedder, built on first use."""
    global _embedder
    if _embedder is None:
        with _lock:
            if _embedder is None:
                _embedder = Embedder(resolve_spec(), pick_device())
    return _embedder
