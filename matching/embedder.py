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

import functools
import io
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from PIL import Image, ImageOps

if TYPE_CHECKING:
    from matching.canonical import CanonicalView

logger = logging.getLogger(__name__)

UNTRAINED_SEED = 0
UNTRAINED_TAG = f"untrained-seed{UNTRAINED_SEED}"


QUANTIZE_CHOICES = ("", "int8")


class WeightsUnavailable(ImproperlyConfigured):
    pass


TRAINING_KEY = "raiox_training"  # a train_matcher checkpoint's own part: its model id and its head
ACTIVE_MANIFEST = "active_trained.json"  # RAIOX_CLIP_CACHE_DIR/...: the activated train_matcher run


def trained_metadata(path: Path | None) -> dict | None:
    """What ``manage.py train_matcher`` stored in its checkpoint (model id, base model, head
    weights), or None for any other checkpoint. Read memory-mapped: cheap even for a large file."""
    if path is None or path.suffix in (".safetensors", ".npz", ".npy") or not path.is_file():
        return None
    stat = path.stat()
    return _trained_metadata(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _trained_metadata(path: str, mtime_ns: int, size: int) -> dict | None:
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception:  # not a torch zip file: open_clip decides whether it loads at all
        return None
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get(TRAINING_KEY), dict):
        return checkpoint[TRAINING_KEY]
    return None


@dataclass(frozen=True)
class ModelSpec:
    architecture: str
    pretrained: str  # tag or checkpoint path
    weights_path: Path | None  # None: untrained

    @property
    def random_init(self) -> bool:
        """No weights file: the architecture with seeded, untrained weights."""
        return self.weights_path is None

    @property
    def trained(self) -> dict | None:
        """A ``train_matcher`` checkpoint's metadata (its head and model id), else None."""
        return trained_metadata(self.weights_path)

    @property
    def untrained(self) -> bool:
        """Results are not meaningful: random weights, or a train_matcher run that started from them."""
        trained = self.trained
        return self.weights_path is None or bool(trained and trained.get("base_untrained"))

    @property
    def weights_id(self) -> str:
        """The network and its weights, without the preprocessing."""
        if self.untrained:
            return f"{self.architecture}/{UNTRAINED_TAG}"
        if Path(self.pretrained).suffix:  # a checkpoint path: name it by file name
            return f"{self.architecture}/{Path(self.pretrained).name}"
        return f"{self.architecture}/{self.pretrained}"

    @property
    def model_id(self) -> str:
        """Recorded next to every embedding: embeddings of different ids are never compared. The
        preprocessing is part of it (``matching.canonical.PREPROCESS_VERSION``): the same weights
        over differently framed pictures give vectors that must not meet in one search. A
        ``train_matcher`` checkpoint carries its own: the base model's id and the training run
        (``ViT-B-32/untrained-seed0+fx1+run3``)."""
        from matching.canonical import PREPROCESS_VERSION

        trained = self.trained
        if trained:
            return str(trained["model_id"])
        return f"{self.weights_id}+{PREPROCESS_VERSION}"


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
    configured = ModelSpec(architecture=architecture, pretrained=pretrained, weights_path=weights)
    return active_trained_spec(configured) or configured


def _active_manifest_path() -> Path:
    return Path(settings.RAIOX_CLIP_CACHE_DIR) / ACTIVE_MANIFEST


def active_manifest() -> dict | None:
    """The train_matcher run staff activated (``matching.services.training_run_activate``), if any."""
    path = _active_manifest_path()
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def active_signature() -> tuple[int, int] | None:
    """Changes whenever an activation (or its roll-back) rewrites the manifest: a cheap stat."""
    try:
        stat = _active_manifest_path().stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def active_trained_spec(configured: ModelSpec) -> ModelSpec | None:
    """The activated train_matcher checkpoint, when it was trained from the configured weights
    (an operator who sets other weights gets those, not a head trained for another model)."""
    manifest = active_manifest()
    if not manifest or manifest.get("base_weights_id") != configured.weights_id:
        return None
    path = Path(manifest.get("path", ""))
    if not path.is_file():
        logger.error("CLIP: the activated checkpoint %s is missing: running %s", path, configured.model_id)
        return None
    return ModelSpec(architecture=configured.architecture, pretrained=str(path), weights_path=path)


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
        trained = spec.trained
        if trained:
            from matching.canonical import PREPROCESS_VERSION

            if trained.get("preprocess_version") != PREPROCESS_VERSION:
                raise ImproperlyConfigured(
                    f"{spec.pretrained} was trained on canonical views {trained.get('preprocess_version')!r}, "
                    f"this code frames pictures as {PREPROCESS_VERSION!r}: run train_matcher again."
                )
        if spec.untrained:
            logger.warning("CLIP: running %s with UNTRAINED weights: results are not meaningful", spec.model_id)
        if spec.random_init:
            torch.manual_seed(UNTRAINED_SEED)  # same untrained weights in every process
            model, _, preprocess = open_clip.create_model_and_transforms(spec.architecture, pretrained=None)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(
                spec.architecture, pretrained=str(spec.weights_path)
            )
        model = model.to(device).eval()
        # train_matcher's head: a small residual projection after the visual tower (identity at its
        # start), applied to every vector this embedder makes, the centre included.
        self.head = None
        if trained:
            from matching.head import head_from_state

            self.head = head_from_state(trained["head"]).to(device).eval()
        if self.quantize == "int8":
            model = _quantize_int8(model)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.preprocess = preprocess
        self._centre = None
        self._centre_lock = threading.Lock()
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

    def embed_images(self, items: Sequence[CanonicalView | Image.Image]) -> list[list[float]]:
        """One vector per item, in one forward pass. Every embedding of this system goes through
        here, and the model only ever sees canonical views (``matching.canonical``): a bare picture
        is framed the catalogue's way first (``reference_view``: its best fixture, apex down), so no
        path — catalogue, confirmed case, import, re-embedding, evaluation — can skip the framing.
        The worker passes the views it built from the fixtures the finder found on a film."""
        from matching.canonical import CanonicalView, reference_view

        views = [item if isinstance(item, CanonicalView) else reference_view(item) for item in items]
        if not views:
            return []
        import torch

        features = torch.tensor(self._forward([view.image for view in views]))
        # Centred on the fixed probe's mean (``matching.canonical``: hubness), then unit length again.
        return torch.nn.functional.normalize(features - self.centre, dim=-1).tolist()

    @property
    def centre(self):
        """The mean embedding of ``matching.canonical.centre_probe_views``, computed on first use
        (about two seconds on a CPU) and kept for the process."""
        if self._centre is None:
            import torch

            from matching.canonical import centre_probe_views

            with self._centre_lock:
                if self._centre is None:
                    probe = torch.tensor(self._forward([view.image for view in centre_probe_views()]))
                    self._centre = probe.mean(dim=0)
        return self._centre

    def embed_uncanonical_baseline(self, images: Sequence[Image.Image]) -> list[list[float]]:
        """The whole picture as it is, without the canonical view: only for ``evaluate_matching``'s
        "whole film as before" baseline row, never for anything stored or searched in production."""
        return self._forward(list(images))

    def tower_features(self, images: list[Image.Image]):
        """The visual tower's unit-length features (a float32 CPU tensor), before any head:
        what ``train_matcher`` caches per augmented view."""
        import torch

        if not images:
            return torch.zeros((0, self.model.visual.output_dim))
        batch = torch.stack([self.preprocess(img) for img in images]).to(self.device)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            features = torch.nn.functional.normalize(self.model.encode_image(batch).float(), dim=-1).cpu()
        return features.clone()  # out of inference mode: train_matcher trains a head on these

    def apply_head(self, features):
        """The trained head (if any) on tower features, unit length again."""
        import torch

        if self.head is None:
            return features
        with torch.inference_mode():
            out = self.head(features.to(self.device)).float()
            return torch.nn.functional.normalize(out, dim=-1).cpu()

    def _forward(self, images: list[Image.Image]) -> list[list[float]]:
        if not images:
            return []
        return self.apply_head(self.tower_features(images)).tolist()

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
_signature: tuple[int, int] | None = None  # the activation manifest the embedder was built under
_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process's one Embedder, built on first use — and built again when staff activate a
    trained model or roll it back (the manifest changed and names another model id): the switch
    needs no restart, and the search only ever compares vectors of the model that made them."""
    global _embedder, _signature
    signature = active_signature()
    if _embedder is None or signature != _signature:
        with _lock:
            if _embedder is None:
                _embedder, _signature = Embedder(resolve_spec(), pick_device()), signature
            elif signature != _signature:
                spec = resolve_spec()
                if spec.model_id != _embedder.model_id:
                    logger.info("CLIP: switching from %s to %s", _embedder.model_id, spec.model_id)
                    _embedder = Embedder(spec, pick_device())
                _signature = signature
    return _embedder
