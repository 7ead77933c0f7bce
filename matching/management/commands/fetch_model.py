"""Download the CLIP weights named by RAIOX_CLIP_MODEL / RAIOX_CLIP_PRETRAINED into
RAIOX_CLIP_CACHE_DIR, once, on a machine with internet. Workers never download at load time.

A server without internet installs a checkpoint copied by hand with ``--from-file PATH`` (see
matching.checkpoints): checksum printed and verified, load checked, model id recorded."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import CommandError

from kernel.commands import RaioxCommand
from matching.embedder import _cached_weights, pretrained_cfg

HF_HOST = "huggingface.co"
CONNECT_TIMEOUT = 5.0


def _offline_reason(host: str) -> str | None:
    """Why the download cannot work, found in seconds rather than after the hub's long retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return "HF_HUB_OFFLINE is set"
    try:
        with socket.create_connection((host, 443), timeout=CONNECT_TIMEOUT):
            return None
    except OSError as exc:
        return f"{host} is unreachable ({type(exc).__name__})"


class Command(RaioxCommand):
    help = "Baixa os pesos do modelo CLIP configurado para RAIOX_CLIP_CACHE_DIR (precisa de internet)."

    def add_arguments(self, parser):
        parser.add_argument("--from-file", type=Path, help="install a checkpoint copied by hand (no internet needed)")
        parser.add_argument("--sha256", default="", help="expected SHA-256 of --from-file; refused if it differs")

    def handle(self, *args: object, **options: object) -> None:
        if options.get("from_file"):
            from matching.checkpoints import CheckpointRefused, install_checkpoint

            try:
                installed = install_checkpoint(
                    options["from_file"], expected_sha256=str(options.get("sha256") or ""), log=self.stdout.write
                )
            except CheckpointRefused as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(self.style.SUCCESS(f"Installed {installed.model_id}: {installed.path}"))
            self.stdout.write(
                f"Set RAIOX_CLIP_PRETRAINED={installed.path} and restart the workers; then "
                "`python manage.py reembed` (or let the worker re-embed the queued images)."
            )
            return
        architecture = settings.RAIOX_CLIP_MODEL
        tag = settings.RAIOX_CLIP_PRETRAINED
        cache_dir = Path(settings.RAIOX_CLIP_CACHE_DIR)
        if Path(tag).suffix or os.sep in tag:
            if Path(tag).expanduser().is_file():
                self.stdout.write(f"RAIOX_CLIP_PRETRAINED is a local checkpoint ({tag}): nothing to download.")
                return
            raise CommandError(f"RAIOX_CLIP_PRETRAINED={tag!r} looks like a file path but no such file exists.")
        cfg = pretrained_cfg(architecture, tag)
        cached = _cached_weights(architecture, tag, cache_dir)
        if cached is not None:
            self.stdout.write(f"{architecture}/{tag} already in the cache: {cached}")
            return
        host = HF_HOST if cfg.get("hf_hub") else urlparse(cfg.get("url", "")).hostname or HF_HOST
        reason = _offline_reason(host)
        if reason is not None:
            raise CommandError(
                f"Cannot download CLIP weights {architecture}/{tag}: {reason}. Run `python manage.py fetch_model` "
                f"on a machine with internet and copy {cache_dir} here, or set RAIOX_CLIP_PRETRAINED to a local "
                "checkpoint file."
            )
        from open_clip.pretrained import download_pretrained

        cache_dir.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"Downloading {architecture}/{tag} into {cache_dir} ...")
        try:
            path = download_pretrained(cfg, cache_dir=str(cache_dir))
        except Exception as exc:
            raise CommandError(f"Download of CLIP weights {architecture}/{tag} failed: {exc}") from exc
        if not path or not Path(path).is_file():
            raise CommandError(f"Download of CLIP weights {architecture}/{tag} produced no file.")
        self.stdout.write(self.style.SUCCESS(f"Weights ready: {path}"))
