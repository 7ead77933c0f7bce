"""Who may do what from where: login and its lockout, CORS, the Content Security Policy, who the
client is behind the proxies, the rate limits' counter, /metrics, and production's HTTPS rules."""

from __future__ import annotations

from raiox.settings.base import IS_PRODUCTION, RAIOX_SHARED_CACHE
from raiox.settings.env import env, env_bool, env_float, env_int, env_list
from raiox.settings.storage import storage_origins

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

# The per-address rate limits (their rates: RAIOX_RATE_LIMITS in product.py) count in the shared
# cache; over the limit the answer is 429 with Retry-After.
RATELIMIT_USE_CACHE = RAIOX_SHARED_CACHE
# django-ratelimit warns about any cache it does not know (W001) and refuses the ones it knows
# cannot count (E003: locmem, plain DatabaseCache). Ours is shared by every web process and counts
# atomically (kernel.cache; tests/security/test_rate_limits.py): the warning is answered.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]

# Only the origins named here may call the API from a browser (the old system allowed all).
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_ALL_ORIGINS = False
CORS_ALLOW_CREDENTIALS = False

# Pages use static JS/CSS files only: no inline script or style, no eval. data: for thumbnails,
# blob: for the preview of the X-ray the dentist has just chosen (a local object URL, never sent).
RAIOX_CSP_IMG_SRC = ["'self'", "data:", "blob:", *storage_origins(), *env_list("RAIOX_CSP_EXTRA_IMG_SRC")]
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

# /metrics answers a request with `Authorization: Bearer <token>` or from one of these addresses.
RAIOX_METRICS_TOKEN = env("RAIOX_METRICS_TOKEN")
RAIOX_METRICS_ALLOWED_IPS = env_list("RAIOX_METRICS_ALLOWED_IPS", "127.0.0.1,::1")

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
