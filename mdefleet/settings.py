"""mdefleet settings, all read from the environment (see .env.example).

Unset, they fall back to embedded defaults (a SQLite file, a filesystem Celery broker) so
`make demo` runs on a bare machine; CI, the tests and docker-compose set PostgreSQL and Redis.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from mdefleet.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MDEFLEET_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# The development key only works with DEBUG on; production must set SECRET_KEY.
SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-key-only-for-debug" if DEBUG else None)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_beat",
    "mdefleet",
    "hosts",
    "deployments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mdefleet.errors.ApiProblemMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "mdefleet.urls"

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
                "mdefleet.roles.roles_context",
            ],
        },
    },
]

WSGI_APPLICATION = "mdefleet.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'mdefleet.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A kept connection is checked before reuse: after a PostgreSQL restart the first request
        # (or task) reconnects instead of failing on the dead socket.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Workers and the web server share one file: wait on locks instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "hosts:fleet"
LOGOUT_REDIRECT_URL = "login"

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Production sits behind a TLS terminator (see SECURITY.md): plain HTTP is redirected, browsers are
# told to stay on HTTPS (HSTS covers this host and its own subdomains only, never the parent domain).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_REFERRER_POLICY = "same-origin"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)

# Cache: login throttling counts failures here; set CACHE_URL (redis://...) when several web
# processes run, so they share one count.
_cache_url = env_str("CACHE_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
    if _cache_url
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# Failed logins per username and source address before that pair is refused for the window.
MDEFLEET_LOGIN_MAX_FAILURES = env_int("MDEFLEET_LOGIN_MAX_FAILURES", 5)
MDEFLEET_LOGIN_WINDOW_SECONDS = env_int("MDEFLEET_LOGIN_WINDOW_SECONDS", 15 * 60)
# Four eyes: nobody approves a wave of a rollout they created themselves.
MDEFLEET_FOUR_EYES = env_bool("MDEFLEET_FOUR_EYES", not DEBUG)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MDEFLEET_MAX_UPLOAD_BYTES", 5 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE

# Secrets at rest: a comma-separated list of Fernet keys, newest first (MultiFernet).
MDEFLEET_FERNET_KEYS = env_list("MDEFLEET_FERNET_KEYS", "")
if not MDEFLEET_FERNET_KEYS and not DEBUG:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set MDEFLEET_FERNET_KEYS (generate one with `python manage.py genkey`).")

# SSH behaviour of the runner.
MDEFLEET_SSH_CONNECT_TIMEOUT = env_int("MDEFLEET_SSH_CONNECT_TIMEOUT", 10)
MDEFLEET_SSH_COMMAND_TIMEOUT = env_int("MDEFLEET_SSH_COMMAND_TIMEOUT", 120)
MDEFLEET_SSH_KEEPALIVE = env_int("MDEFLEET_SSH_KEEPALIVE", 15)
MDEFLEET_SSH_MAX_OUTPUT = env_int("MDEFLEET_SSH_MAX_OUTPUT", 64 * 1024)
MDEFLEET_SSH_CONCURRENCY = env_int("MDEFLEET_SSH_CONCURRENCY", 200)
MDEFLEET_SSH_HANDSHAKES = env_int("MDEFLEET_SSH_HANDSHAKES", 100)
MDEFLEET_CPU_SAMPLE_SECONDS = env_int("MDEFLEET_CPU_SAMPLE_SECONDS", 2)
# A snapshot's sampling plan: SAMPLES CPU readings of CPU_SAMPLE_SECONDS each; the median is the gated figure.
MDEFLEET_SNAPSHOT_SAMPLES = max(1, env_int("MDEFLEET_SNAPSHOT_SAMPLES", 3))
MDEFLEET_CLAIM_BATCH = env_int("MDEFLEET_CLAIM_BATCH", 500)
MDEFLEET_CLAIM_STALE_SECONDS = env_int("MDEFLEET_CLAIM_STALE_SECONDS", 120)

# Celery: Redis when set, else a filesystem broker under var/ that needs no server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_DEFAULT_QUEUE = "mdefleet"

# Outgoing webhooks (mdefleet/webhooks/): links in events are absolute under MDEFLEET_BASE_URL.
MDEFLEET_BASE_URL = env_str("MDEFLEET_BASE_URL", "http://localhost:8000")
MDEFLEET_WEBHOOK_TIMEOUT = env_int("MDEFLEET_WEBHOOK_TIMEOUT", 5)  # connect and read, seconds
MDEFLEET_WEBHOOK_BACKOFF_SECONDS = env_int("MDEFLEET_WEBHOOK_BACKOFF_SECONDS", 30)  # then x4 each retry
MDEFLEET_WEBHOOK_MAX_ATTEMPTS = env_int("MDEFLEET_WEBHOOK_MAX_ATTEMPTS", 8)
# Delivered and failed deliveries (with their attempt log) are deleted after this many days.
MDEFLEET_WEBHOOK_RETENTION_DAYS = env_int("MDEFLEET_WEBHOOK_RETENTION_DAYS", 90)
# Deliveries have their own queue; a worker started without -Q consumes both, `-Q webhooks` only them.
MDEFLEET_WEBHOOK_QUEUE = env_str("MDEFLEET_WEBHOOK_QUEUE", "webhooks")
CELERY_TASK_QUEUES = {CELERY_TASK_DEFAULT_QUEUE: {}, MDEFLEET_WEBHOOK_QUEUE: {}}
CELERY_TASK_ROUTES = {"mdefleet.webhooks.tasks.*": {"queue": MDEFLEET_WEBHOOK_QUEUE}}
CELERY_IMPORTS = ["mdefleet.webhooks.tasks"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Service accounts (Bearer mdf_...) first: its Bearer challenge makes unauthenticated calls 401.
        "mdefleet.authentication.ServiceAccountAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["mdefleet.permissions.RolePermission"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "mdefleet.errors.ProblemAutoSchema",
    # Every API error is RFC 9457 problem+json (mdefleet/errors.py).
    "EXCEPTION_HANDLER": "mdefleet.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mdefleet API",
    "DESCRIPTION": "Roll Microsoft Defender for Endpoint out to Linux fleets in waves.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"asyncssh": {"level": "WARNING"}},
}
