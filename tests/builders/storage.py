"""What the default storage holds, to count files exactly (each test has its own media folder or
bucket: ``tests/conftest.py``)."""

from __future__ import annotations

from django.core.files.storage import storages


def storage_keys() -> list[str]:
    """Every object key in the default storage (local folder or bucket)."""
    storage = storages["default"]
    found: list[str] = []

    def walk(prefix: str) -> None:
        dirs, files = storage.listdir(prefix)
        found.extend(f"{prefix}{name}" if prefix else name for name in files)
        for d in dirs:
            walk(f"{prefix}{d}/")

    try:
        walk("")
    except FileNotFoundError:
        return []
    return sorted(found)
