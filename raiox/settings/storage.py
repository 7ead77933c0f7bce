"""Static files and media: DigitalOcean Spaces (S3 protocol) when a bucket is configured, local
files otherwise."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from raiox.settings.base import BASE_DIR, IS_PRODUCTION, SECRET_KEY, VAR_DIR
from raiox.settings.env import env, env_bool, env_int

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))

AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME")
# Read once here: the storage options and the Content Security Policy's image origin (security.py)
# both need them. Lower-case, so Django does not take them for settings of their own.
s3_endpoint_url = env("AWS_S3_ENDPOINT_URL", "https://nyc3.digitaloceanspaces.com") or ""
s3_addressing_style = env("AWS_S3_ADDRESSING_STYLE", "virtual")
if AWS_STORAGE_BUCKET_NAME:
    DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": s3_endpoint_url,
            "region_name": env("AWS_S3_REGION_NAME", "nyc3"),
            "access_key": env("AWS_ACCESS_KEY_ID"),
            "secret_key": env("AWS_SECRET_ACCESS_KEY"),
            # Patient X-rays: private objects, short-lived signed URLs, never overwrite a key.
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 600),
            "file_overwrite": False,
            "signature_version": "s3v4",
            "addressing_style": s3_addressing_style,
        },
    }
else:
    DEFAULT_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": MEDIA_URL},
    }
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Local media is served by Django only on a developer's machine; in production it lives in Spaces.
SERVE_LOCAL_MEDIA = not AWS_STORAGE_BUCKET_NAME and env_bool("RAIOX_SERVE_MEDIA", not IS_PRODUCTION)
# Key for the keyed hash that turns a dentist's e-mail into the folder name under clientes/.
RAIOX_CLIENT_ID_KEY = env("RAIOX_CLIENT_ID_KEY", SECRET_KEY)


def storage_origins() -> list[str]:
    """Where signed image URLs point to (Spaces), so <img> tags may load them."""
    if not AWS_STORAGE_BUCKET_NAME:
        return []
    endpoint = urlsplit(s3_endpoint_url)
    if s3_addressing_style == "virtual":
        return [f"{endpoint.scheme}://{AWS_STORAGE_BUCKET_NAME}.{endpoint.netloc}"]
    return [f"{endpoint.scheme}://{endpoint.netloc}"]
