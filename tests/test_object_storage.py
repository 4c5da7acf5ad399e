"""Media in S3-compatible object storage (MEDIA_STORAGE_URL), against a real S3 server process
(moto's standalone server on 127.0.0.1, tests/objectstore.py) over HTTP: uploads, renditions,
serving with byte ranges through the owner check, deletion, retention, the corrections dataset,
readiness and the storage error metric. The embedded default (MEDIA_ROOT) has its own tests.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from emotionsite.settings import media_storage
from recognition.analyses import media, retention, services
from recognition.analyses.models import Analysis
from recognition.operations import health, metrics
from tests.objectstore import S3Server, bucket_of

pytestmark = pytest.mark.django_db
XHR = {"HTTP_ACCEPT": "application/json", "HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


@pytest.fixture
def bucket(s3_server, settings):
    """A fresh bucket as the site's media storage; returns its name."""
    url = s3_server.bucket()
    settings.STORAGES = {**settings.STORAGES, "default": media_storage(url, timeout=2.0)}
    assert media.object_store()
    return bucket_of(url)


def storage_errors(operation: str) -> float:
    return metrics.STORAGE_ERRORS.labels(operation)._value.get()


def upload(client, data: bytes, name: str, capture):
    with capture(execute=True):
        return client.post(reverse("upload"), {"file": SimpleUploadedFile(name, data)}, **XHR)


# --- settings --------------------------------------------------------------------------------


def test_media_storage_url_forms():
    minio = media_storage("s3+http://key:s%2Fecret@minio:9000/media?region=eu-west-1&prefix=site/")
    options = minio["OPTIONS"]
    assert minio["BACKEND"] == "storages.backends.s3.S3Storage"
    assert options["endpoint_url"] == "http://minio:9000" and options["bucket_name"] == "media"
    assert (options["access_key"], options["secret_key"]) == ("key", "s/ecret")
    assert options["region_name"] == "eu-west-1" and options["location"] == "site"
    assert options["default_acl"] is None and options["file_overwrite"] is False
    aws = media_storage("s3:///media")["OPTIONS"]  # AWS itself, boto3's credential chain
    assert "endpoint_url" not in aws and "access_key" not in aws
    assert media_storage("s3://s3.example.com/media")["OPTIONS"]["endpoint_url"] == "https://s3.example.com"
    for bad in ("http://minio/media", "s3://minio:9000/", "s3://minio/a/b"):
        with pytest.raises(ValueError):
            media_storage(bad)


def test_the_embedded_default_is_the_local_folder(settings):
    from django.core.files.storage import FileSystemStorage, storages

    assert isinstance(storages["default"], FileSystemStorage) and not media.object_store()


# --- uploads, renditions, serving -------------------------------------------------------------


def test_photo_upload_is_stored_in_the_bucket_and_analysed(
    alice_client, user, face_photo, bucket, s3_server, settings, django_capture_on_commit_callbacks
):
    response = upload(alice_client, face_photo, "me.jpg", django_capture_on_commit_callbacks)
    assert response.status_code == 201, response.content
    analysis = Analysis.objects.get(owner=user)
    assert analysis.status == "done" and analysis.face_count >= 1  # the task read it from the bucket
    keys = s3_server.keys(bucket)
    assert keys == sorted([analysis.media.name, media.rendition_name(analysis, "thumb"),
                           media.rendition_name(analysis, "preview")])  # fmt: skip
    assert all(k.startswith(f"users/{user.pk}/") for k in keys)
    assert s3_server.get(bucket, analysis.media.name) == face_photo
    assert not (settings.MEDIA_ROOT.exists() and any(settings.MEDIA_ROOT.rglob("*.*")))  # nothing local

    url = reverse("analysis-media", args=[analysis.pk])
    whole = alice_client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert whole["Content-Length"] == str(len(face_photo))
    assert b"".join(whole.streaming_content) == face_photo
    thumb = alice_client.get(url, {"variant": "thumb"})
    assert thumb.status_code == 200 and b"".join(thumb.streaming_content)[:3] == b"\xff\xd8\xff"


def test_media_from_the_bucket_is_served_in_ranges_to_its_owner_only(
    alice_client, client, other_user, user, speech_clip, bucket
):
    data = speech_clip.read_bytes()
    analysis = services.create_analysis(owner=user, upload=data, filename="voice.flac", enqueue=False)
    url = reverse("analysis-media", args=[analysis.pk])
    part = alice_client.get(url, HTTP_RANGE="bytes=1000-300999")  # more than one buffer's worth
    assert part.status_code == 206
    end = min(300999, len(data) - 1)
    assert part["Content-Range"] == f"bytes 1000-{end}/{len(data)}"
    assert b"".join(part.streaming_content) == data[1000 : end + 1]
    tail = alice_client.get(url, HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and b"".join(tail.streaming_content) == data[-10:]
    beyond = alice_client.get(url, HTTP_RANGE=f"bytes={len(data)}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(data)}"
    client.force_login(other_user)
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # to the log-in page, never the bucket


def test_a_file_gone_from_the_bucket_is_a_404_and_a_failed_analysis_with_a_reason(
    alice_client, user, face_photo, bucket, s3_server
):
    analysis = services.create_analysis(owner=user, upload=face_photo, filename="a.jpg", enqueue=False)
    s3_server.client().delete_object(Bucket=bucket, Key=analysis.media.name)
    assert alice_client.get(reverse("analysis-media", args=[analysis.pk])).status_code == 404
    done = services.run_analysis(analysis_id=analysis.pk)
    assert done.status == "failed" and "no longer available" in done.error


# --- deletion and retention -------------------------------------------------------------------


def test_delete_all_my_data_empties_the_users_part_of_the_bucket(
    alice_client, user, other_user, face_photo, speech_clip, bucket, s3_server,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    services.create_analysis(owner=user, upload=face_photo, filename="a.jpg", enqueue=False)
    services.create_analysis(owner=user, upload=speech_clip.read_bytes(), filename="b.flac", enqueue=False)
    theirs = services.create_analysis(owner=other_user, upload=face_photo, filename="c.jpg", enqueue=False)
    # An object no record names any more (a crash between storing and saving the record).
    s3_server.client().put_object(Bucket=bucket, Key=f"users/{user.pk}/orphan.jpg", Body=b"x")
    assert len(s3_server.keys(bucket, f"users/{user.pk}/")) == 5  # photo + 2 renditions, clip, orphan
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("delete-my-data"))
    assert response.status_code == 302
    assert s3_server.keys(bucket, f"users/{user.pk}/") == []
    assert s3_server.keys(bucket) == sorted(media.stored_names(theirs))  # the other user's stay


def test_retention_deletes_expired_files_from_the_bucket(user, face_photo, bucket, s3_server, settings,
                                                          django_capture_on_commit_callbacks):  # fmt: skip
    settings.RETENTION_DEFAULT, settings.RETENTION_DAYS = "media", 30
    old = services.create_analysis(owner=user, upload=face_photo, filename="old.jpg", enqueue=False)
    services.run_analysis(analysis_id=old.pk)
    Analysis.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=40))
    new = services.create_analysis(owner=user, upload=face_photo, filename="new.jpg", enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        totals = retention.purge_expired()
    assert totals["media"] == 1
    assert s3_server.keys(bucket) == sorted(media.stored_names(new))


def test_corrections_dataset_reads_photos_from_the_bucket(
    alice_client, user, face_photo, bucket, django_capture_on_commit_callbacks
):
    from recognition.corrections import dataset
    from recognition.corrections import services as corrections
    from recognition.corrections.models import Correction

    with django_capture_on_commit_callbacks(execute=True):
        analysis = services.create_analysis(owner=user, upload=face_photo, filename="a.jpg")
    analysis.refresh_from_db()
    assert analysis.status == "done"
    corrections.set_correction(owner=user, analysis_id=analysis.pk, item="face-1", label="happy")
    files, skipped = dataset.dataset_files(list(Correction.objects.filter(owner=user)))
    assert skipped == 0 and len(files) == 1
    _, payload, row = files[0]
    assert payload[:8] == b"\x89PNG\r\n\x1a\n" and row["label"] == "happy"


# --- the store unreachable ----------------------------------------------------------------------


@pytest.fixture
def unreachable_store(settings, s3_server):
    """MEDIA_STORAGE_URL pointing at a port nothing listens on (the store is down)."""
    from tests.objectstore import _free_port

    dead = S3Server(s3_server.log_path.parent, port=_free_port())
    settings.STORAGES = {**settings.STORAGES, "default": media_storage(dead.url("media"), timeout=1.0)}


def test_readyz_fails_while_the_object_store_is_unreachable_and_counts_it(client, bucket, settings, s3_server):
    ready = client.get("/readyz")
    assert ready.json()["checks"]["media"] == {**ready.json()["checks"]["media"], "ok": True,
                                                "detail": "object store writable"}  # fmt: skip
    assert s3_server.keys(bucket) == []  # the probe's object is removed
    before = storage_errors("check")
    settings.STORAGES = {**settings.STORAGES, "default": media_storage(S3Server(s3_server.log_path.parent).url("media"), timeout=1.0)}
    answer = client.get("/readyz")
    assert answer.status_code == 503
    check = answer.json()["checks"]["media"]
    assert check["ok"] is False and check["detail"].startswith("object store: ")
    assert "127.0.0.1" not in json.dumps(answer.json())  # no addresses in the answer
    assert storage_errors("check") == before + 1
    # bounded by the probe's own wait (health.STORAGE_TIMEOUT), not by botocore's 60 s default
    # timeouts and retries; the slack is for a loaded 2-core machine (4.3 s seen beside a training)
    assert check["ms"] < (health.STORAGE_TIMEOUT + 5) * 1000


def test_an_upload_while_the_store_is_down_is_a_503_with_nothing_left(
    alice_client, user, face_photo, unreachable_store, django_capture_on_commit_callbacks
):
    before = storage_errors("save")
    response = upload(alice_client, face_photo, "a.jpg", django_capture_on_commit_callbacks)
    assert response.status_code == 503
    assert "try again" in response.content.decode()
    assert not Analysis.objects.filter(owner=user).exists()
    assert storage_errors("save") == before + 1


def test_an_analysis_whose_store_is_down_is_retried_not_failed(user, face_photo, bucket, settings, s3_server):
    analysis = services.create_analysis(owner=user, upload=face_photo, filename="a.jpg", enqueue=False)
    good = settings.STORAGES
    settings.STORAGES = {**good, "default": media_storage(S3Server(s3_server.log_path.parent).url("media"), timeout=1.0)}
    before = storage_errors("read")
    with pytest.raises(media.StorageUnavailable) as raised:
        services.run_analysis(analysis_id=analysis.pk)
    assert isinstance(raised.value, ConnectionError)  # the task's autoretry_for covers it
    assert storage_errors("read") == before + 1
    analysis.refresh_from_db()
    assert analysis.status != "failed" and not analysis.error
    settings.STORAGES = good  # the store is back: the retry finds the file
    assert services.run_analysis(analysis_id=analysis.pk).status == "done"


def scraped_storage_errors(client, operation: str) -> float:
    text = client.get("/metrics", headers={"Authorization": "Bearer scrape-token"}).content.decode()
    line = next(x for x in text.splitlines() if x.startswith(f'emotionsite_storage_errors_total{{operation="{operation}"}}'))
    return float(line.rsplit(" ", 1)[1])


def test_readyz_follows_the_object_store_process_going_away_and_coming_back(client, settings, s3_server):
    """The store's own process stops (not a wrong address): /readyz turns 503 within its bound
    and the scrape counts the failed checks; started again, ready on the next probe."""
    settings.METRICS_TOKEN = "scrape-token"
    store = S3Server(s3_server.log_path.parent)
    store.start()
    try:
        url = store.bucket("media")
        settings.STORAGES = {**settings.STORAGES, "default": media_storage(url, timeout=1.0)}
        assert client.get("/readyz").status_code == 200
        before = scraped_storage_errors(client, "check")
        store.stop()
        down = client.get("/readyz")
        assert down.status_code == 503 and down.json()["checks"]["media"]["ok"] is False
        assert down.json()["checks"]["database"]["ok"]  # only the store is blamed
        assert scraped_storage_errors(client, "check") == before + 1
        store.start()
        store.bucket("media")  # moto keeps buckets in memory: a restarted one is empty
        assert client.get("/readyz").status_code == 200
    finally:
        store.stop()


def test_media_while_the_store_is_down_is_a_503_not_a_500(alice_client, user, face_photo, bucket, settings, s3_server):
    analysis = services.create_analysis(owner=user, upload=face_photo, filename="a.jpg", enqueue=False)
    url = reverse("analysis-media", args=[analysis.pk])
    settings.STORAGES = {**settings.STORAGES, "default": media_storage(S3Server(s3_server.log_path.parent).url("media"), timeout=1.0)}
    for params in ({}, {"variant": "thumb"}):
        answer = alice_client.get(url, params)
        assert answer.status_code == 503 and answer["Retry-After"] == "30"
        assert answer.json()["error"]["code"] == "storage_unavailable"
