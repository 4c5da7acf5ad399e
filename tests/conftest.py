"""Shared fixtures: users, signed-in clients, real media (photos with faces, speech clips)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

MEDIA = Path(__file__).parent / "media"
SPEECH = MEDIA / "speech"


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
