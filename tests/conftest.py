"""Shared fixtures: users, signed-in clients, real media (photos with faces, speech clips)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests import readguard
from tests.objectstore import s3_server  # noqa: F401 - fixture: a real S3 server process (moto)

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(__file__).parent / "media"
SPEECH = MEDIA / "speech"
FER2013 = MEDIA / "fer2013"  # real FER2013 faces: <split>/<class>/*.jpg (scripts/make_fer_fixture.py)


def pytest_configure(config):
    """From here on, reading beside the repository (../shared) fails: tests/readguard.py. Python
    processes the tests start inherit the guard through PYTHONPATH."""
    readguard.install(REPO)
    os.environ[readguard.ENV] = str(REPO)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if readguard.SITE_DIR not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([readguard.SITE_DIR, *filter(None, paths)])


def pytest_unconfigure(config):
    readguard.disable()


def pytest_sessionfinish(session, exitstatus):
    refused = readguard.take_violations()  # outside any test: session fixtures, collection
    if refused:
        print("\n".join(["", "Reads outside the repository:", *refused]), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def refusals() -> list[str]:
    """The reads refused since the last call, and the guard switched back on if a test had
    switched it off (that too is a failure)."""
    problems = readguard.take_violations()
    if not readguard.enabled():
        readguard.enable()
        problems.append("the read guard (tests/readguard.py) was switched off")
    return problems


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A refused read fails the test (setup, call or teardown) even when the code under test
    caught OutsideRepoRead and carried on."""
    report = yield
    problems = refusals()
    if problems and report.passed:
        report.outcome = "failed"
        report.longrepr = "\n".join(problems)
    return report


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Every test writes uploads into its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 with production iterations costs ~0.5 s per hash on this machine; tests that log
    in or create users would spend most of their time hashing. Behaviour is unchanged."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def face_photo() -> bytes:
    """A real photo with one clear face (test_image.jpg)."""
    return (MEDIA / "test_image.jpg").read_bytes()


@pytest.fixture
def group_photo() -> bytes:
    """A real photo with many faces (12_angry_men.jpg)."""
    return (MEDIA / "12_angry_men.jpg").read_bytes()


@pytest.fixture
def speech_clip() -> Path:
    """A real speech clip (RAVDESS, happy, actor 18), 16 kHz FLAC."""
    return SPEECH / "03-01-03-02-01-01-18.flac"


@pytest.fixture
def password() -> str:
    return "correct-horse-battery-9"


@pytest.fixture
def user(django_user_model, password):
    return django_user_model.objects.create_user(username="alice", password=password)


@pytest.fixture
def other_user(django_user_model, password):
    return django_user_model.objects.create_user(username="mallory", password=password)


@pytest.fixture
def alice_client(client, user):
    client.force_login(user)
    return client


def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def tiny_face_models(tmp_path_factory) -> Path:
    """A models folder with an untrained, tiny face CNN, its card and registry.json: exercises
    the face inference and evaluation plumbing without the shipped model (accuracy meaningless)."""
    import json

    from recognition.inference.labels import FACE_EMOTIONS
    from recognition.inference.registry import sha256_file, write_card
    from training.face import build_cnn

    directory = tmp_path_factory.mktemp("tiny_face_models")
    build_cnn(len(FACE_EMOTIONS), width=0.125, dense=16).save(directory / "face_tiny.keras")
    card = {
        "name": "face_tiny",
        "task": "face",
        "version": "0.test",
        "file": "face_tiny.keras",
        "classes": list(FACE_EMOTIONS),
        "temperature": 1.0,
        "sha256": sha256_file(directory / "face_tiny.keras"),
    }
    write_card(card, directory)
    (directory / "registry.json").write_text(json.dumps({"face": "face_tiny"}))
    return directory
