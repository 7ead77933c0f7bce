"""Reading a stored image and loading it for the model: the one loader of the worker, the bulk
embedding, ``reembed``, the evaluation and the training's features, with the one poison type.

A file that is gone for good or does not decode raises ``kernel.imaging.InvalidImage``: the
intake's refusal and the worker's poison are the same thing (retrying cannot help), carrying the
dentist's reason (``MISSING_IMAGE``, ``UNREADABLE_IMAGE``) and a ``code``. Storage trouble (an
outage, the network) raises as it is: transient, the caller retries.
"""

from __future__ import annotations

from typing import Protocol

from django.core.files.storage import default_storage
from PIL import Image

from kernel.imaging import InvalidImage
from submissions.messages import MISSING_IMAGE

UNREADABLE_IMAGE = "Não foi possível ler a imagem enviada. Envie o arquivo original da radiografia."

MISSING_CODE = "missing_file"
UNREADABLE_CODE = "unreadable_image"


class ImageLoader(Protocol):
    """What loads a picture for the model: ``Embedder.load_image`` (an instance's, so that tests
    counting decodes on the worker's embedder see every one)."""

    def load_image(self, data: bytes) -> Image.Image: ...


def stored_image_read(name: str) -> bytes:
    """The stored file's bytes; ``InvalidImage`` (``MISSING_CODE``) when it is gone for good."""
    try:
        with default_storage.open(name, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:  # gone for good: a retry cannot bring it back
        raise InvalidImage(MISSING_IMAGE, code=MISSING_CODE) from exc


def image_load(loader: ImageLoader, data: bytes) -> Image.Image:
    """``data`` decoded for the model; ``InvalidImage`` (``UNREADABLE_CODE``) when it does not."""
    try:
        return loader.load_image(data)
    except Exception as exc:  # any decoder error: this file will never decode
        raise InvalidImage(UNREADABLE_IMAGE, code=UNREADABLE_CODE) from exc


def stored_image_load(loader: ImageLoader, name: str) -> Image.Image:
    """A stored image read and decoded for the model, mapping missing and undecodable files to
    ``InvalidImage`` (see the module docstring)."""
    return image_load(loader, stored_image_read(name))
