"""Installing CLIP weights copied by hand onto a server without internet (``fetch_model --from-file``).

The file is hashed (SHA-256, printed, compared with the one the operator expects), loaded once into
the configured architecture to prove it fits (a wrong file is refused here, not at the first X-ray),
then copied into ``RAIOX_CLIP_CACHE_DIR/checkpoints/`` under a name that carries the hash, so that
two different checkpoints never share a model id. ``installed.json`` records what was installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from matching.embedder import ModelSpec

CHUNK = 1024 * 1024
MANIFEST = "installed.json"


class CheckpointRefused(Exception):
    pass


@dataclass(frozen=True)
class InstalledCheckpoint:
    model_id: str
    path: str
    sha256: str
    architecture: str
    size_bytes: int
    installed_at: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_loads(architecture: str, path: Path) -> None:
    """Build the architecture with these weights, as a worker will (strict: every tensor must fit)."""
    import open_clip

    try:
        open_clip.create_model(architecture, pretrained=str(path), device="cpu")
    except Exception as exc:
        raise CheckpointRefused(
            f"{path.name} is not a {architecture} checkpoint open_clip can load: {type(exc).__name__}: {exc}"
        ) from exc


def install_checkpoint(
    source: Path, *, expected_sha256: str = "", log: Callable[[str], object] = print
) -> InstalledCheckpoint:
    architecture = settings.RAIOX_CLIP_MODEL
    if not source.is_file():
        raise CheckpointRefused(f"No such file: {source}")
    digest = sha256_of(source)
    log(f"sha256 {digest}  {source}")
    if expected_sha256 and expected_sha256.strip().lower() != digest:
        raise CheckpointRefused(f"Checksum mismatch: expected {expected_sha256.strip().lower()}, file has {digest}.")
    check_loads(architecture, source)
    folder = Path(settings.RAIOX_CLIP_CACHE_DIR) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{source.stem}-{digest[:12]}{source.suffix or '.pt'}"
    if not target.is_file() or sha256_of(target) != digest:
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)  # atomic: a worker never sees half a file
    spec = ModelSpec(architecture=architecture, pretrained=str(target), weights_path=target)
    installed = InstalledCheckpoint(
        model_id=spec.model_id,
        path=str(target),
        sha256=digest,
        architecture=architecture,
        size_bytes=target.stat().st_size,
        installed_at=timezone.now().isoformat(),
    )
    (folder.parent / MANIFEST).write_text(json.dumps(asdict(installed), indent=2) + "\n", encoding="utf-8")
    return installed


def installed_checkpoint() -> InstalledCheckpoint | None:
    """What ``fetch_model --from-file`` installed last, if anything."""
    manifest = Path(settings.RAIOX_CLIP_CACHE_DIR) / MANIFEST
    if not manifest.is_file():
        return None
    return InstalledCheckpoint(**json.loads(manifest.read_text(encoding="utf-8")))
