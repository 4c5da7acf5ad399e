"""Settings for emotionsite, read from the environment (django-environ).

With nothing set, the site runs on an embedded default: SQLite and media under ``data/``, the
in-memory channel layer, a local-memory cache and Celery tasks executed in-process. Setting
``DATABASE_URL`` / ``REDIS_URL`` switches the same code to PostgreSQL, Redis and real workers.
"""
from __future__ import annotations

import secrets
from pathlib import Path

import environ
from csp.constants import NONCE

from recognition.operations.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the data folder."""
    if env.str("SECRET_KEY", default=""):
        return env.str("SECRET_KEY")
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # The product, one app per domain (docs/architecture.md); labels in brackets where the app
    # kept the label of the app it came from, so its tables and migrations keep their names.
    "recognition.operations",
    "recognition.accounts",  # [privacy]
    "recognition.analyses",  # [recognition]
    "recognition.corrections",
    "recognition.live",
    "recognition.api",
]

MIDDLEWARE = [
    # First: request id (X-Request-ID, logs, Celery tasks), HTTP metrics by URL pattern, one log line
    "recognition.operations.observability.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "recognition.operations.csp.CSPMiddleware",  # Content-Security-Policy on every response (django-csp)
    "recognition.analyses.middleware.RangeRequestsMiddleware",  # 206 for media, so players can seek
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): passed a second factor
    "recognition.accounts.middleware.StaffTwoFactorMiddleware",  # staff must use two-factor sign-in
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "emotionsite.urls"
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
            ],
        },
    },
]
WSGI_APPLICATION = "emotionsite.wsgi.application"
ASGI_APPLICATION = "emotionsite.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several threads (daphne, in-process tasks) write: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Failed log-ins allowed per client address, and per address and username, within the window
# (recognition.accounts.auth_views.RateLimitedLoginView); then 429 until the window ends.
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=20)
LOGIN_FAILURES_PER_USERNAME = env.int("LOGIN_FAILURES_PER_USERNAME", default=5)
LOGIN_FAILURE_WINDOW = env.int("LOGIN_FAILURE_WINDOW", default=900)
LOGIN_REDIRECT_URL = "home"
# Sign-in security, retention and consent (recognition/accounts/, docs/privacy-and-security.md "Sign-in security, retention and
# consent"). Self-service sign-ups upload only once their e-mail address is verified.
REQUIRE_EMAIL_VERIFICATION = env.bool("REQUIRE_EMAIL_VERIFICATION", default=True)
EMAIL_VERIFICATION_DAYS = env.int("EMAIL_VERIFICATION_DAYS", default=3)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="emotionsite")
# Site default for accounts that keep "the site's default": keep, media (delete the stored files
# after RETENTION_DAYS, keep the results) or all (delete the analyses too).
RETENTION_DEFAULT = env.str("RETENTION_DEFAULT", default="media")
RETENTION_DAYS = env.int("RETENTION_DAYS", default=365)
ACCOUNT_EVENT_DAYS = env.int("ACCOUNT_EVENT_DAYS", default=90)  # sign-in and deletion log
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_BACKEND",
            default="django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}
# Uploaded media is private: it is never served under a public URL, only through
# owner-checked views (recognition.analyses.views.analysis_media). MEDIA_URL is deliberately unset in urls.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
# Uploads in S3-compatible object storage (AWS S3, MinIO, ...) instead of MEDIA_ROOT, so web servers
# and workers on different hosts see the same files: MEDIA_STORAGE_URL=s3+http://KEY:SECRET@minio:9000/bucket
# (s3:// for HTTPS; no host: AWS itself; no KEY:SECRET: boto3's own credential chain; query
# ?region=...&prefix=...). The bucket stays private: files are streamed through the owner-checked
# views, never by a public or signed bucket URL (recognition/analyses/media.py).
MEDIA_STORAGE_URL = env.str("MEDIA_STORAGE_URL", default="")
MEDIA_STORAGE_TIMEOUT = env.float("MEDIA_STORAGE_TIMEOUT", default=5.0)  # connect and read, seconds


def media_storage(url: str, timeout: float = 5.0) -> dict:
    """The STORAGES["default"] entry for MEDIA_STORAGE_URL (ValueError for a malformed one)."""
    from urllib.parse import parse_qs, unquote, urlsplit

    from botocore.config import Config

    parts = urlsplit(url)
    if parts.scheme not in ("s3", "s3+http", "s3+https"):
        raise ValueError("MEDIA_STORAGE_URL must start with s3://, s3+https:// or s3+http://")
    bucket = parts.path.strip("/")
    if not bucket or "/" in bucket:
        raise ValueError("MEDIA_STORAGE_URL must name one bucket: s3://host/bucket")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    options = {
        "bucket_name": bucket,
        "region_name": query.get("region") or None,
        "location": query.get("prefix", "").strip("/"),
        "default_acl": None,  # the bucket's own policy: private
        "querystring_auth": True,
        "querystring_expire": 300,
        "file_overwrite": False,  # a name already taken gets a suffix, as on the file system
        # Bounded calls, so a store that is down fails a request or /readyz in seconds.
        "client_config": Config(
            connect_timeout=timeout, read_timeout=timeout, signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path"} if parts.hostname else {},
        ),
    }
    if parts.hostname:
        scheme = "http" if parts.scheme == "s3+http" else "https"
        options["endpoint_url"] = f"{scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    if parts.username:
        options["access_key"] = unquote(parts.username)
        options["secret_key"] = unquote(parts.password or "")
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


if MEDIA_STORAGE_URL:
    STORAGES["default"] = media_storage(MEDIA_STORAGE_URL, MEDIA_STORAGE_TIMEOUT)

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="emotionsite <noreply@localhost>")
# Real mail (password-reset links): EMAIL_URL=smtp+tls://user:password@smtp.example.com:587
# sets EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER/PASSWORD, EMAIL_USE_TLS/SSL.
if env.str("EMAIL_URL", default=""):
    globals().update(env.email_url("EMAIL_URL"))

# --- Redis: Celery, Channels, cache -------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Seconds to open a connection to Redis, for every client (broker, result backend, cache, channel
# layer). Without it a Redis host that is gone from the network (SYNs dropped, nothing refused)
# holds a request for the kernel's SYN retries, about two minutes (tests/test_redis_unanswering.py).
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=2.0)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_CONNECT_TIMEOUT
    CELERY_TASK_ALWAYS_EAGER = False
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, the same as channels_redis's
            # blocking 5 s BZPOPMIN: an idle consumer then dies with "Timeout reading". Give the
            # read room (tests/test_channels_redis.py keeps a socket idle past 5 s).
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": REDIS_CONNECT_TIMEOUT}],
                "prefix": env.str("CHANNELS_PREFIX", default="asgi"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": REDIS_CONNECT_TIMEOUT},
        }
    }
else:
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = False
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
# Load and warm the served models when a worker process or the web server starts
# (recognition/operations/warmup.py), so the first job is not the slow one. A prefork child warms before it
# reports itself up, which takes longer than Celery's default 4 s allowance.
WARM_UP_MODELS = env.bool("WARM_UP_MODELS", default=True)
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.float(
    "CELERY_WORKER_PROC_ALIVE_TIMEOUT", default=120.0
)
# Queue the site sends to and workers read by default (separate deployments sharing a Redis).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
# Celery beat (`celery -A emotionsite beat`, or `worker -B` for a single worker) re-sends
# analyses whose message a Redis restart or outage lost (services.requeue_lost).
REQUEUE_QUEUED_AFTER = env.float("REQUEUE_QUEUED_AFTER", default=120.0)
CELERY_BEAT_SCHEDULE = {
    "requeue-lost-analyses": {
        "task": "recognition.tasks.requeue_lost",
        "schedule": env.float("REQUEUE_LOST_INTERVAL", default=60.0),
    },
    # Retention: stored files (or whole analyses) past each account's N days (recognition.analyses.tasks.purge_expired, named privacy.tasks.purge_expired).
    "retention": {
        "task": "privacy.tasks.purge_expired",
        "schedule": env.float("RETENTION_INTERVAL", default=3600.0),
    },
}

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    # Same scopes as DRF's classes, but rates are re-read per request (override_settings works).
    "DEFAULT_THROTTLE_CLASSES": [
        "recognition.api.throttling.UserThrottle",
        "recognition.api.throttling.AnonThrottle",
    ],
    "EXCEPTION_HANDLER": "recognition.api.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="600/min"),
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        "token": env.str("API_THROTTLE_TOKEN", default="20/min"),
        "uploads": env.str("API_THROTTLE_UPLOADS", default="120/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "emotionsite API",
    "DESCRIPTION": "Emotion recognition from faces and voices.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request/response components, so uploads are documented as binary, not URLs.
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No deep links: they put a link inside each operation's button (axe: nested-interactive).
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    "REDOC_DIST": "SIDECAR",
}

# --- Product limits -------------------------------------------------------------------------
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=25 * 1024 * 1024)
MAX_IMAGE_PIXELS = env.int("MAX_IMAGE_PIXELS", default=40_000_000)
MAX_AUDIO_SECONDS = env.float("MAX_AUDIO_SECONDS", default=300.0)
MAX_VIDEO_SECONDS = env.float("MAX_VIDEO_SECONDS", default=120.0)
MAX_VIDEO_PIXELS = env.int("MAX_VIDEO_PIXELS", default=1920 * 1080)
VIDEO_SAMPLE_FPS = env.float("VIDEO_SAMPLE_FPS", default=4.0)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_BYTES + 1024 * 1024
MODELS_DIR = Path(env.str("MODELS_DIR", default=str(BASE_DIR / "models")))
# Longest `?wait=N` the API honours on uploads (the request holds a worker thread meanwhile).
API_MAX_WAIT_SECONDS = env.float("API_MAX_WAIT_SECONDS", default=30.0)
# Live page (recognition.live): per-connection caps on /ws/live/ (keep the message cap under
# daphne's own 1 MiB, past which it drops the socket), the width frames are analysed at (320:
# the same faces as 480-640 on webcam and group frames, detection 2-4x cheaper; bench_live), the
# inference thread pool, and how long a dropped socket's session waits to be resumed.
LIVE_MAX_MESSAGE_BYTES = env.int("LIVE_MAX_MESSAGE_BYTES", default=512 * 1024)
LIVE_MAX_MESSAGES_PER_SECOND = env.float("LIVE_MAX_MESSAGES_PER_SECOND", default=60.0)
LIVE_MAX_FRAME_PIXELS = env.int("LIVE_MAX_FRAME_PIXELS", default=1920 * 1080)
LIVE_MAX_AUDIO_SECONDS = env.float("LIVE_MAX_AUDIO_SECONDS", default=5.0)
# A session analysed on the device is saved through POST /api/v1/live-sessions/ (numbers only; at its
# caps, 7200 samples and 20000 faces, about 2 MB).
LIVE_DEVICE_MAX_BODY_BYTES = env.int("LIVE_DEVICE_MAX_BODY_BYTES", default=3 * 1024 * 1024)
LIVE_INFER_MAX_WIDTH = env.int("LIVE_INFER_MAX_WIDTH", default=320)
LIVE_INFERENCE_THREADS = env.int("LIVE_INFERENCE_THREADS", default=2)
LIVE_RESUME_SECONDS = env.float("LIVE_RESUME_SECONDS", default=60.0)

# --- Security (production: DEBUG=False) -----------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    HTTPS = env.bool("HTTPS", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
    SESSION_COOKIE_SECURE = HTTPS
    CSRF_COOKIE_SECURE = HTTPS
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
    SECURE_HSTS_PRELOAD = HTTPS

# Content-Security-Policy (django-csp; recognition/operations/csp.py adds this host's websocket origin to
# connect-src). No inline script runs: pages load static files; an inline <script> would need
# nonce="{{ request.csp_nonce }}". <style> elements only from our static files; style=""
# attributes (bar widths, aspect ratios set by templates and libraries) stay allowed.
# Violations are POSTed to /csp-report/, which logs them (logger "recognition.csp").
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", "'unsafe-inline'"],  # attributes; browsers without -elem/-attr
        "style-src-elem": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "report-uri": ["/csp-report/"],
    }
}
CSP_REPORT_MAX_BYTES = 64 * 1024

# --- Operations: logs and metrics (docs/deployment.md "Operate it") ---------------------------------------
# LOG_FORMAT=json: one JSON object per line (recognition/operations/logs.py), with the request id that also
# reaches the request's Celery tasks; text (default): time, level, logger, [request id], message.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOGGING = logging_config(fmt=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
# /metrics (and a worker's WORKER_METRICS_PORT) answer only a bearer token equal to METRICS_TOKEN
# or a client address in METRICS_ALLOWED_IPS (addresses or networks); with neither, nobody.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
# A Celery worker serves its own metrics on this port (0: none) and address (same access rule).
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
WORKER_METRICS_ADDR = env.str("WORKER_METRICS_ADDR", default="127.0.0.1")
