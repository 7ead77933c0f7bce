"""Django's core: where the project lives, which environment this is, apps, middleware, templates,
i18n and the caches."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from raiox.settings.env import env, env_bool, env_list

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("RAIOX_VAR_DIR", BASE_DIR / "var"))

ENVIRONMENT = env("DJANGO_ENV", "development")
IS_PRODUCTION = ENVIRONMENT == "production"
TESTING = "pytest" in sys.modules or env_bool("RAIOX_TESTING")

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

LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", "America/Sao_Paulo")
USE_I18N = True
USE_TZ = True

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
