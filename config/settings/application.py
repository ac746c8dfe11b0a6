"""The Django application: apps, middleware, URLs, templates, static files, and how many HTTP
requests a process admits at once."""

import warnings

from config.settings.environment import BASE_DIR, env_integer, env_number

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    # Refresh tokens are recorded when issued and can be revoked (logout, password change,
    # deactivation, suspension); ``manage.py flushexpiredtokens`` drops rows past their expiry.
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's assets served from here: /api/docs/ works without internet
    "bookings",
    "partners",
    "messaging",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The admin's (and later pages') static files from the application itself, with caching
    # headers, so make serve / make cluster need no file server (contract 8.4).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.metrics.MetricsMiddleware",
    "config.overload.UnavailableMiddleware",
    # Which address a password check is for: one address gets a fair share of the hashing pool.
    "config.hashing.ClientAddressMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide admin template overrides (the link to the live dashboard).
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies made by collectstatic (make serve / make cluster run it); no manifest,
    # so a page renders the same whether or not collectstatic ran.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Also serve files not collected yet (straight from the apps' static folders): a page never
# loses its script because collectstatic was skipped; collected files win when present.
WHITENOISE_USE_FINDERS = True
# Before the first collectstatic there is no STATIC_ROOT yet; the finders serve the files meanwhile.
warnings.filterwarnings("ignore", message="No directory at: ")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# HTTP requests (not Socket.IO) a process runs at once, and how long the next may wait for a
# turn before 503 with Retry-After (config/admission.py). Requests to PASSWORD_PATHS hash a
# password: the hashing pool bounds them instead.
HTTP_CONCURRENCY = env_integer("HTTP_CONCURRENCY", "8", 1, 100_000)
HTTP_QUEUE_TIMEOUT = env_number("HTTP_QUEUE_TIMEOUT", "5", 0, 3600)
PASSWORD_PATHS = (
    "/api/auth/token/",
    "/api/auth/register/",
    "/api/partners/register/",
    "/api/auth/password/",
    "/admin/login/",
)
