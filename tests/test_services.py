"""services.py and selectors.py: create/run/delete analyses, with real media and real models."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404

from recognition.analyses import media, selectors, services
from recognition.analyses.media import MediaRejected
from recognition.analyses.models import Analysis
from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS
from tests.media_convert import audio_as, image_as, video_mp4

pytestmark = pytest.mark.django_db


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run the on-commit callbacks (enqueue -> eager task, pushes) as a real commit would."""

    def run(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return run


# --- create ----------------------------------------------------------------------------------


def test_create_stores_the_file_privately_and_records_it(user, face_photo, settings):
    analysis = services.create_analysis(
        owner=user, upload=face_photo, filename="me.jpg", enqueue=False
    )
    analysis.refresh_from_db()
    assert analysis.kind == "image" and analysis.status == "queued"
    assert analysis.original_name == "me.jpg"
    assert analysis.content_type == "image/jpeg"
    assert analysis.size == len(face_photo)
    assert analysis.sha256 == hashlib.sha256(face_photo).hexdigest()
    assert analysis.media.name == f"users/{user.pk}/{analysis.uid.hex}.jpg"
    with default_storage.open(analysis.media.name, "rb") as fh:
        assert fh.read() == face_photo
    assert default_storage.exists(media.rendition_name(analysis, "thumb"))
    assert default_storage.exists(media.rendition_name(analysis, "preview"))


def test_create_takes_an_uploaded_file_and_ignores_its_name_for_the_kind(
    user, speech_clip
):
    upload = SimpleUploadedFile(
        "../../holiday.jpg", audio_as(speech_clip, "wav"), content_type="image/jpeg"
    )
    analysis = services.create_analysis(owner=user, upload=upload, enqueue=False)
    assert analysis.kind == "audio"
    assert analysis.content_type == "audio/wav"
    assert analysis.original_name == "holiday.jpg"
    assert analysis.media.name.endswith(".wav")


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"just some text, not a photo",
        "truncated-jpeg",
        "bomb",
        "too-big",
        "too-long",
    ],
)
def test_refused_uploads_leave_no_record_and_no_file(
    user, face_photo, speech_clip, settings, bad
):
    settings.MAX_IMAGE_PIXELS = 500_000
    if bad == "truncated-jpeg":
        bad = face_photo[:20_000]
    elif bad == "bomb":
        bad = image_as(face_photo, "png", max_side=2048)  # 2048x1536 > 0.5 MP
    elif bad == "too-big":
        settings.MAX_UPLOAD_BYTES = 10_000
        bad = face_photo
    elif bad == "too-long":
        settings.MAX_AUDIO_SECONDS = 1
        bad = audio_as(speech_clip, "ogg")
    with pytest.raises(MediaRejected) as exc:
        services.create_analysis(owner=user, upload=bad, filename="x.jpg")
    assert 400 <= exc.value.status < 500
    assert Analysis.objects.count() == 0
    assert stored_files(settings.MEDIA_ROOT) == []


def test_failed_database_write_removes_the_stored_files(
    user, face_photo, settings, monkeypatch
):
    def broken_save(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Analysis, "save", broken_save)
    with pytest.raises(RuntimeError):
        services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    assert stored_files(settings.MEDIA_ROOT) == []


def test_video_is_refused_until_a_video_analyser_is_registered(
    user, monkeypatch, settings
):
    clip = video_mp4()
    monkeypatch.delitem(
        services.ANALYSERS, "video", raising=False
    )  # as before video landed
    with pytest.raises(MediaRejected) as exc:
        services.create_analysis(owner=user, upload=clip, filename="clip.mp4")
    assert exc.value.status == 415 and "not supported yet" in exc.value.message
    assert stored_files(settings.MEDIA_ROOT) == []

    monkeypatch.setitem(services.ANALYSERS, "video", services.analyse_image)
    analysis = services.create_analysis(
        owner=user, upload=clip, filename="clip.mp4", enqueue=False
    )
    assert (analysis.kind, analysis.content_type) == ("video", "video/mp4")
    settings.MAX_VIDEO_SECONDS = 0.5
    with pytest.raises(MediaRejected) as exc:
        services.create_analysis(
            owner=user, upload=clip, filename="clip.mp4", enqueue=False
        )
    assert exc.value.status == 413


# --- run -------------------------------------------------------------------------------------


def test_upload_runs_through_the_task_to_a_face_result(user, face_photo, run_on_commit):
    analysis = run_on_commit(
        services.create_analysis, owner=user, upload=face_photo, filename="face.jpg"
    )
    analysis.refresh_from_db()
    assert analysis.status == "done", analysis.error
    result = analysis.result
    assert (result["width"], result["height"]) == (2048, 1536)
    assert analysis.face_count == len(result["faces"]) >= 1
    for face in result["faces"]:
        x, y, w, h = face["box"]
        assert 0 <= x < x + w <= 2048 and 0 <= y < y + h <= 1536
        assert set(face["probabilities"]) == set(FACE_EMOTIONS)
        assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert face["emotion"] == max(
            face["probabilities"], key=face["probabilities"].get
        )
    assert analysis.emotion in FACE_EMOTIONS
    assert 0 < analysis.confidence <= 1
    assert analysis.models_used["face"]["name"]
    assert analysis.timings["total_ms"] > 0
    assert analysis.attempts == 1 and analysis.progress == 100
    assert analysis.started <= analysis.finished


def test_upload_messages_carry_the_state_the_analysis_reached_meanwhile(
    user, other_user, face_photo, speech_clip, run_on_commit
):
    photo = run_on_commit(
        services.create_analysis, owner=user, upload=face_photo, filename="face.jpg"
    )
    clip = services.create_analysis(
        owner=user, upload=speech_clip.read_bytes(), filename="a.flac", enqueue=False
    )
    assert photo.status == clip.status == "queued"  # the instances the view holds
    photo_msg, clip_msg = services.current_messages(owner=user, analyses=[photo, clip])
    assert photo_msg["id"] == photo.pk and photo_msg["status"] == "done"
    assert photo_msg["emotion"] in FACE_EMOTIONS and photo_msg["face_count"] >= 1
    assert clip_msg["id"] == clip.pk and clip_msg["status"] == "queued"
    # Another owner's ids are never read back: their stale payload is all they get.
    assert (
        services.current_messages(owner=other_user, analyses=[photo])[0]["status"]
        == "queued"
    )


def test_headline_is_the_largest_face(user, group_photo):
    analysis = services.create_analysis(owner=user, upload=group_photo, enqueue=False)
    done = services.run_analysis(analysis_id=analysis.pk)
    assert done.status == "done", done.error
    faces = done.result["faces"]
    assert done.face_count == len(faces) >= 6
    largest = max(faces, key=lambda f: f["box"][2] * f["box"][3])
    assert (done.emotion, done.confidence) == (
        largest["emotion"],
        largest["confidence"],
    )


def test_run_is_idempotent(user, face_photo):
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    first = services.run_analysis(analysis_id=analysis.pk)
    assert first.status == "done", first.error
    again = services.run_analysis(analysis_id=analysis.pk)
    assert again.finished == first.finished and again.attempts == 1
    assert again.result == first.result


def test_rerun_after_a_crash_replaces_the_partial_attempt(user, face_photo):
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    Analysis.objects.filter(pk=analysis.pk).update(
        status="running", attempts=1, result={"faces": "partial"}
    )
    done = services.run_analysis(analysis_id=analysis.pk)
    assert done.status == "done" and isinstance(done.result["faces"], list)
    assert done.attempts == 2


def test_audio_result(user, speech_clip):
    analysis = services.create_analysis(
        owner=user, upload=audio_as(speech_clip, "mp3"), enqueue=False
    )
    done = services.run_analysis(analysis_id=analysis.pk)
    assert done.status == "done", done.error
    assert done.result["duration"] == pytest.approx(3.77, abs=0.15)
    assert done.result["speech"] is True
    assert done.emotion in VOICE_EMOTIONS and done.emotion == done.result["emotion"]
    assert set(done.result["probabilities"]) == set(VOICE_EMOTIONS)
    assert done.result["windows"] and done.models_used["voice"]["name"]
    assert done.face_count == 0


def test_damaged_stored_file_ends_failed_with_a_readable_message(user, face_photo):
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    path = Path(default_storage.path(analysis.media.name))
    path.write_bytes(face_photo[:5000])
    failed = services.run_analysis(analysis_id=analysis.pk)
    assert failed.status == "failed"
    assert "damaged" in failed.error
    assert failed.finished is not None and failed.result == {}


def test_missing_stored_file_ends_failed(user, speech_clip):
    analysis = services.create_analysis(
        owner=user, upload=audio_as(speech_clip, "wav"), enqueue=False
    )
    default_storage.delete(analysis.media.name)
    failed = services.run_analysis(analysis_id=analysis.pk)
    assert failed.status == "failed" and "no longer available" in failed.error


def test_status_changes_are_pushed_to_the_owner_group(user, face_photo, run_on_commit):
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"user-{user.pk}", channel)
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    run_on_commit(services.run_analysis, analysis_id=analysis.pk)
    statuses = []
    for _ in range(2):
        message = async_to_sync(layer.receive)(channel)
        assert message["type"] == "analysis.update"
        assert message["analysis"]["id"] == analysis.pk
        statuses.append(message["analysis"]["status"])
    assert statuses == ["running", "done"]


def test_a_broken_channel_layer_does_not_fail_the_analysis(
    user, face_photo, run_on_commit, monkeypatch
):
    import channels.layers

    def broken():
        raise ConnectionError("redis is down")

    monkeypatch.setattr(channels.layers, "get_channel_layer", broken)
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    assert (
        run_on_commit(services.run_analysis, analysis_id=analysis.pk).status == "done"
    )


# --- delete ----------------------------------------------------------------------------------


def test_delete_removes_record_and_files(
    user, other_user, face_photo, settings, run_on_commit
):
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    assert len(stored_files(settings.MEDIA_ROOT)) == 3
    with pytest.raises(Http404):
        run_on_commit(
            services.delete_analysis, owner=other_user, analysis_id=analysis.pk
        )
    assert len(stored_files(settings.MEDIA_ROOT)) == 3
    run_on_commit(services.delete_analysis, owner=user, analysis_id=analysis.pk)
    assert not Analysis.objects.filter(pk=analysis.pk).exists()
    assert stored_files(settings.MEDIA_ROOT) == []


def test_delete_user_data_removes_only_that_users_data(
    user, other_user, face_photo, speech_clip, settings, run_on_commit
):
    services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    services.create_analysis(
        owner=user, upload=audio_as(speech_clip, "flac"), enqueue=False
    )
    kept = services.create_analysis(owner=other_user, upload=face_photo, enqueue=False)
    assert run_on_commit(services.delete_user_data, owner=user) == 2
    assert list(Analysis.objects.all()) == [kept]
    assert not (Path(settings.MEDIA_ROOT) / f"users/{user.pk}").exists()
    assert all(
        f"users/{other_user.pk}/" in str(p) for p in stored_files(settings.MEDIA_ROOT)
    )
    assert len(stored_files(settings.MEDIA_ROOT)) == 3


# --- selectors -------------------------------------------------------------------------------


def make(owner, kind="image", emotion="happy", status="done", days_ago=0, faces=1):
    a = Analysis.objects.create(
        owner=owner,
        kind=kind,
        status=status,
        emotion=emotion,
        confidence=0.8 if emotion else None,
        face_count=faces,
    )
    if days_ago:
        Analysis.objects.filter(pk=a.pk).update(
            created=a.created - dt.timedelta(days=days_ago)
        )
    return a


def test_selectors_filter_and_scope_to_the_owner(user, other_user):
    happy = make(user)
    sad_old = make(user, emotion="sad", days_ago=10)
    voice = make(user, kind="audio", emotion="calm", faces=0)
    theirs = make(other_user)
    assert set(selectors.analyses_for(user)) == {happy, sad_old, voice}
    assert list(selectors.analyses_for(user, kind="audio")) == [voice]
    assert list(selectors.analyses_for(user, emotion="sad")) == [sad_old]
    today = dt.date.today()
    assert set(
        selectors.analyses_for(user, date_from=today - dt.timedelta(days=1))
    ) == {happy, voice}
    assert list(
        selectors.analyses_for(user, date_to=(today - dt.timedelta(days=5)).isoformat())
    ) == [sad_old]
    assert selectors.get_analysis_for(user, happy.pk) == happy
    for pk in (theirs.pk, "abc", None, 10**9):
        with pytest.raises(Http404):
            selectors.get_analysis_for(user, pk)


def test_stats_and_export(user, other_user):
    make(user)
    make(user, emotion="happy", faces=3)
    make(user, kind="audio", emotion="angry", faces=0)
    make(user, emotion="", status="failed", faces=0)
    make(other_user, emotion="sad")
    stats = selectors.stats_for(user)
    assert stats["total"] == 4
    assert stats["emotions"] == {"happy": 2, "angry": 1}
    assert stats["by_modality"] == {"image": {"happy": 2}, "audio": {"angry": 1}}
    assert stats["by_status"] == {"done": 3, "failed": 1}
    assert stats["faces"] == 4
    assert sum(d["emotions"].get("happy", 0) for d in stats["over_time"]) == 2
    rows = selectors.export_rows(user)
    assert len(rows) == 4 and all(set(r) == set(selectors.EXPORT_FIELDS) for r in rows)
    assert "sad" not in {r["emotion"] for r in rows}
