"""The settings switch, checked in fresh interpreters with a clean environment.

Each case starts `python` in a subprocess with only the variables it names (plus PATH/HOME), so
nothing from the test process (pytest-django, scripts/test's DATABASE_URL) leaks in. The probe
prints what the running code actually uses: database engine, channel layer, cache, the Celery
app's configuration, and the secret key.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import redis_url

BASE_DIR = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, django
django.setup()
from django.conf import settings
from django.core.cache import caches
from django.db import connection
from channels.layers import get_channel_layer
from emotionsite.celery import app

db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"],
    "db_name": str(db["NAME"]),
    "vendor": connection.vendor,
    "channel_layer": type(get_channel_layer()).__name__,
    "cache": type(caches["default"]).__name__,
    "eager": app.conf.task_always_eager,
    "broker": app.conf.broker_url,
    "result_backend": app.conf.result_backend,
    "secret_key": settings.SECRET_KEY,
    "debug": settings.DEBUG,
    "media_root": str(settings.MEDIA_ROOT),
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "csrf_trusted_origins": settings.CSRF_TRUSTED_ORIGINS,
    "ssl_redirect": getattr(settings, "SECURE_SSL_REDIRECT", False),
    "hsts": getattr(settings, "SECURE_HSTS_SECONDS", 0),
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "staticfiles": settings.STORAGES["staticfiles"]["BACKEND"],
    "email_backend": settings.EMAIL_BACKEND,
    "email_host": settings.EMAIL_HOST,
    "email_port": settings.EMAIL_PORT,
    "email_tls": settings.EMAIL_USE_TLS,
}))
"""

# Talks to the real services through the Redis-mode settings: a message through the
# channels-redis layer, a value through the Redis cache, the Celery broker, a Postgres query.
SERVICES_PROBE = r"""
import asyncio, json, uuid, django
django.setup()
from django.core.cache import cache
from django.db import connection
from channels.layers import get_channel_layer
from emotionsite.celery import app

async def round_trip():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "probe.message", "token": TOKEN})
    return await asyncio.wait_for(layer.receive(channel), timeout=10)

TOKEN = uuid.uuid4().hex
message = asyncio.run(round_trip())
cache.set("settings-probe", TOKEN, 30)
with app.connection_for_write() as conn:
    conn.ensure_connection(max_retries=1)
    broker_ok = conn.connected
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
    row = cursor.fetchone()
print(json.dumps({
    "layer_echo": message["token"] == TOKEN,
    "cache_echo": cache.get("settings-probe") == TOKEN,
    "broker_connected": broker_ok,
    "postgres": row[0],
}))
"""


def _clean_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "emotionsite.settings",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(variables)
    return env


def _python(code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *(("-c", code) if code else ()), *args],
        check=False,
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _probe(tmp_path: Path, **variables: str) -> dict:
    result = _python(PROBE, _clean_env(tmp_path, **variables))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _production_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DATA_DIR": str(tmp_path / "data"),
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "emotions.example.com,www.emotions.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://emotions.example.com",
        "DATABASE_URL": "postgres://emotionsite:pw@db.internal:5432/emotionsite",
        "REDIS_URL": "redis://cache.internal:6379/0",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587",
    }


def test_embedded_default_needs_no_services(tmp_path):
    data_dir = tmp_path / "data"
    probe = _probe(tmp_path, DATA_DIR=str(data_dir))

    assert probe["engine"] == "django.db.backends.sqlite3"
    assert probe["db_name"] == str(data_dir / "db.sqlite3")
    assert probe["media_root"] == str(data_dir / "media")
    assert probe["channel_layer"] == "InMemoryChannelLayer"
    assert probe["cache"] == "LocMemCache"
    assert probe["eager"] is True
    assert probe["broker"] == "memory://"
    assert probe["debug"] is True
    assert probe["email_backend"] == "django.core.mail.backends.console.EmailBackend"
    assert (
        "127.0.0.1" in probe["allowed_hosts"] and "localhost" in probe["allowed_hosts"]
    )


def test_embedded_default_keeps_data_under_the_project(tmp_path):
    """With truly nothing set, the data folder is <repo>/data (where ./scripts/run puts it)."""
    probe = _probe(tmp_path)
    assert probe["db_name"] == str(BASE_DIR / "data" / "db.sqlite3")
    assert probe["media_root"] == str(BASE_DIR / "data" / "media")
    assert probe["secret_key"] == (BASE_DIR / "data" / "secret_key").read_text().strip()


def test_generated_secret_key_is_persisted_and_reused(tmp_path):
    data_dir = tmp_path / "data"
    key_file = data_dir / "secret_key"
    assert not key_file.exists()

    first = _probe(tmp_path, DATA_DIR=str(data_dir))["secret_key"]
    assert key_file.exists()
    assert key_file.stat().st_mode & 0o777 == 0o600, "the key file must be private"
    assert len(first) >= 50 and not first.startswith("django-insecure")
    assert key_file.read_text().strip() == first

    second = _probe(tmp_path, DATA_DIR=str(data_dir))["secret_key"]
    assert second == first, (
        "a second start must reuse the key (sessions survive restarts)"
    )

    elsewhere = _probe(tmp_path, DATA_DIR=str(tmp_path / "other"))["secret_key"]
    assert elsewhere != first, "each data folder gets its own random key"


def test_secret_key_from_environment_wins_and_writes_nothing(tmp_path):
    data_dir = tmp_path / "data"
    key = secrets.token_urlsafe(64)
    assert _probe(tmp_path, DATA_DIR=str(data_dir), SECRET_KEY=key)["secret_key"] == key
    assert not (data_dir / "secret_key").exists()


def test_postgres_and_redis_urls_switch_every_backend(tmp_path):
    probe = _probe(
        tmp_path,
        DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/emotionsite",
        REDIS_URL="redis://127.0.0.1:6379/3",
    )

    assert probe["engine"] == "django.db.backends.postgresql"
    assert probe["vendor"] == "postgresql"
    assert probe["db_name"] == "emotionsite"
    assert probe["channel_layer"] == "RedisChannelLayer"
    assert probe["cache"] == "RedisCache"
    assert probe["eager"] is False
    assert probe["broker"] == "redis://127.0.0.1:6379/3"
    assert probe["result_backend"] == "redis://127.0.0.1:6379/3"


def test_sqlite_database_url_is_honoured(tmp_path):
    db_file = tmp_path / "elsewhere.sqlite3"
    probe = _probe(
        tmp_path, DATA_DIR=str(tmp_path / "data"), DATABASE_URL=f"sqlite:///{db_file}"
    )
    assert probe["engine"] == "django.db.backends.sqlite3"
    assert probe["db_name"] == str(db_file)
    assert probe["eager"] is True  # no REDIS_URL: still in-process


def test_production_variables(tmp_path):
    env = _production_env(tmp_path)
    probe = _probe(tmp_path, **env)

    assert probe["debug"] is False
    assert probe["secret_key"] == env["SECRET_KEY"]
    assert probe["allowed_hosts"] == [
        "emotions.example.com",
        "www.emotions.example.com",
    ]
    assert probe["csrf_trusted_origins"] == ["https://emotions.example.com"]
    assert probe["media_root"] == env["MEDIA_ROOT"]
    assert probe["ssl_redirect"] is True
    assert probe["hsts"] >= 31536000
    assert probe["session_cookie_secure"] is True
    assert probe["email_backend"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (probe["email_host"], probe["email_port"], probe["email_tls"]) == (
        "smtp.example.com",
        587,
        True,
    )
    assert (
        probe["staticfiles"]
        == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    )


def test_check_deploy_is_clean_with_production_variables(tmp_path):
    env = _clean_env(tmp_path, **_production_env(tmp_path))
    result = _python(
        "", env, "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_the_development_default(tmp_path):
    """The deploy check is not vacuous: the embedded default (DEBUG on) fails it."""
    env = _clean_env(tmp_path, DATA_DIR=str(tmp_path / "data"))
    result = _python(
        "", env, "manage.py", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr  # DEBUG=True in deployment


@pytest.mark.services
def test_redis_mode_talks_to_real_services(tmp_path):
    """Through the Redis-mode settings: channels-redis delivers a message, the Redis cache
    stores a value, the Celery broker connects and PostgreSQL answers."""
    result = _python(
        SERVICES_PROBE,
        _clean_env(
            tmp_path,
            DATA_DIR=str(tmp_path / "data"),
            DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
            REDIS_URL=redis_url(),
            CHANNELS_PREFIX=f"settings-test-{uuid.uuid4().hex[:8]}",
        ),
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe == {
        "layer_echo": True,
        "cache_echo": True,
        "broker_connected": True,
        "postgres": 1,
    }


# --- Container setup (no Docker engine here: parse the files and check what they say) -------


def _compose() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


def test_docker_compose_defines_the_production_stack():
    services = _compose()["services"]
    assert set(services) == {"web", "worker", "redis", "postgres", "minio", "minio-init"}

    web, worker = services["web"], services["worker"]
    assert (
        "daphne --proxy-headers -b 0.0.0.0 -p 8000 emotionsite.asgi:application"
        in web["command"]
    )
    assert "migrate --noinput" in web["command"]
    assert worker["command"] == "celery -A emotionsite worker -B -l info"
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")

    for app in (web, worker):
        assert app["build"] == "."
        env = app["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgres://")
            and "@postgres:5432/" in env["DATABASE_URL"]
        )
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["DEBUG"] == "False"
        assert {"postgres", "redis"} <= set(app["depends_on"])
    # The worker reads the files the web process stored: the same bucket, in MinIO, which
    # minio-init has made (private) before either starts.
    storage = web["environment"]["MEDIA_STORAGE_URL"]
    assert storage == worker["environment"]["MEDIA_STORAGE_URL"]
    assert storage.startswith("s3+http://") and storage.endswith("@minio:9000/media")
    from emotionsite.settings import media_storage

    defaults = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", storage)  # Compose's ${VAR:-default}
    options = media_storage(defaults)["OPTIONS"]
    assert (options["bucket_name"], options["endpoint_url"], options["access_key"]) == ("media", "http://minio:9000", "emotionsite")
    init = services["minio-init"]
    assert "mc mb --ignore-existing local/media" in init["entrypoint"]
    assert "mc anonymous set none local/media" in init["entrypoint"]
    assert services["minio"]["image"].startswith("quay.io/minio/minio:RELEASE.")
    for app in (web, worker):
        assert app["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}


def test_compose_services_have_healthchecks_and_start_in_order():
    """Each service says when it is healthy, and the apps start only once what they need is."""
    from django.urls import resolve

    services = _compose()["services"]
    tests = {name: " ".join(s["healthcheck"]["test"]) for name, s in services.items() if "healthcheck" in s}
    # The image (python:3.11-slim) has no curl: the web check is a Python one-liner on /healthz.
    assert services["web"]["healthcheck"]["test"][:2] == ["CMD", "python"]
    url = re.search(r"urlopen\('(http://127\.0\.0\.1:8000(/[^']*))'", tests["web"])
    assert url and url.group(2) == "/healthz", tests["web"]
    assert resolve("/healthz").url_name == "healthz"
    assert "celery -A emotionsite inspect ping" in tests["worker"]
    # This worker only; $$ is a literal $ for the shell, not a Compose variable.
    assert "-d celery@$$HOSTNAME" in tests["worker"]
    assert "redis-cli ping" in tests["redis"]
    assert "pg_isready" in tests["postgres"]
    assert "mc ready local" in " ".join(services["minio"]["healthcheck"]["test"])
    for name, service in services.items():
        if service.get("restart") == "no":  # a one-shot job (minio-init): others wait for it to finish
            continue
        check = service["healthcheck"]
        assert {"interval", "timeout", "retries"} <= set(check), name
        assert service["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name

    healthy = {"condition": "service_healthy"}
    for app in ("web", "worker"):
        deps = services[app]["depends_on"]
        assert deps["postgres"] == healthy and deps["redis"] == healthy, app
    # The worker waits for web, which has run the migrations before daphne answers /healthz.
    assert services["worker"]["depends_on"]["web"] == healthy
    assert "web" not in services["web"]["depends_on"]


def test_compose_variables_are_ones_the_settings_read():
    """A misspelt variable in docker-compose.yml would be silently ignored by Django."""
    read = set(
        re.findall(
            r'env(?:\.\w+)?\(\s*"([A-Z_]+)"',
            (BASE_DIR / "emotionsite" / "settings.py").read_text(),
        )
    )
    for name in ("web", "worker"):
        assert set(_compose()["services"][name]["environment"]) <= read


def test_dockerfile_builds_on_python_311_slim_and_serves_with_daphne():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert "pip install -r requirements.txt" in dockerfile
    assert "collectstatic" in dockerfile
    assert (
        'CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "emotionsite.asgi:application"]'
        in dockerfile
    )
    assert re.search(r"^USER app$", dockerfile, re.MULTILINE), (
        "the server must not run as root"
    )
    ignored = (BASE_DIR / ".dockerignore").read_text().split()
    assert {".venv", "data", ".git"} <= set(ignored)
    assert "models" not in ignored, "the served models ship in the image"


@pytest.mark.skipif(
    subprocess.run(
        ["docker", "compose", "version"], capture_output=True, check=False
    ).returncode
    != 0
    if shutil.which("docker")
    else True,
    reason="no docker compose client on this machine",
)
def test_docker_compose_config_parses():
    result = subprocess.run(
        ["docker", "compose", "config", "-q"],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
