"""Upload, result, history, dashboard, export and delete pages through the test client.

Uploads go through the real page view with eager Celery (tasks run when the upload commits), so
each format is stored, analysed with the real models and shown.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from recognition.analyses import services
from recognition.analyses.models import Analysis
from tests.media_convert import audio_as, image_as, video_mp4

pytestmark = pytest.mark.django_db
XHR = {"HTTP_ACCEPT": "application/json", "HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture
def upload(alice_client, django_capture_on_commit_callbacks):
    """POST one file to the upload page (XHR by default), running on-commit work (the task)."""

    def post(data: bytes, name: str, *, xhr: bool = True, follow: bool = False):
        with django_capture_on_commit_callbacks(execute=True):
            return alice_client.post(
                reverse("upload"),
                {"file": SimpleUploadedFile(name, data)},
                follow=follow,
                **(XHR if xhr else {}),
            )

    return post


@pytest.mark.parametrize(
    "name",
    ["upload", "history", "dashboard", "history-export-csv", "history-export-json"],
)
def test_pages_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_upload_page_renders(alice_client):
    response = alice_client.get(reverse("upload"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="upload-form"' in html and 'type="file"' in html and "multiple" in html
    assert "25 MB" in html


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "heic"])
def test_each_image_format_is_analysed_and_shown(alice_client, upload, face_photo, fmt):
    response = upload(image_as(face_photo, fmt), f"face.{fmt}")
    assert response.status_code == 201, response.content
    body = response.json()["analysis"]
    analysis = Analysis.objects.get(pk=body["id"])
    assert analysis.kind == "image" and analysis.original_name == f"face.{fmt}"
    assert analysis.status == "done", analysis.error
    assert analysis.face_count >= 1
    page = alice_client.get(
        reverse("analysis-detail", args=[analysis.pk])
    ).content.decode()
    assert page.count('class="face-box"') == analysis.face_count
    assert f'badge emo-{analysis.emotion}">{analysis.emotion}' in page
    assert "Face 1" in page
    assert page.count('<ul class="prob-list" aria-label="Probabilities for face ') == analysis.face_count
    assert page.count('<div class="bar emo-') == 7 * analysis.face_count
    preview = alice_client.get(
        reverse("analysis-media", args=[analysis.pk]) + "?variant=preview"
    )
    assert preview.status_code == 200 and preview["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("fmt", ["wav", "mp3", "m4a", "ogg", "flac", "webm"])
def test_each_audio_format_is_analysed_and_shown(
    alice_client, upload, speech_clip, fmt
):
    response = upload(audio_as(speech_clip, fmt), f"speech.{fmt}")
    assert response.status_code == 201, response.content
    analysis = Analysis.objects.get(pk=response.json()["analysis"]["id"])
    assert analysis.kind == "audio"
    assert analysis.status == "done", analysis.error
    assert analysis.result["duration"] == pytest.approx(3.77, abs=0.15)
    page = alice_client.get(
        reverse("analysis-detail", args=[analysis.pk])
    ).content.decode()
    assert "<audio" in page and 'class="timeline-strip"' in page
    assert page.count('aria-label="Probabilities for the whole recording"') == (1 if analysis.result["speech"] else 0)
    assert f'badge badge-lg emo-{analysis.emotion}">{analysis.emotion}' in page
    original = alice_client.get(reverse("analysis-media", args=[analysis.pk]))
    assert original.status_code == 200
    assert (
        b"".join(original.streaming_content) == Path(analysis.media.path).read_bytes()
    )


def test_plain_form_post_redirects_to_the_result(upload, face_photo):
    response = upload(face_photo, "face.jpg", xhr=False)
    analysis = Analysis.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("analysis-detail", args=[analysis.pk])


def test_several_files_in_one_form_post(
    alice_client, face_photo, speech_clip, django_capture_on_commit_callbacks
):
    files = [
        SimpleUploadedFile("a.jpg", face_photo),
        SimpleUploadedFile("b.flac", speech_clip.read_bytes()),
        SimpleUploadedFile("c.txt", b"not media"),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("upload"), {"files": files}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("history")
    assert sorted(Analysis.objects.values_list("kind", flat=True)) == ["audio", "image"]
    assert "c.txt: This file type is not supported" in response.content.decode()


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("empty", 400, "empty"),
        ("text-named-jpg", 415, "not supported"),
        ("truncated", 400, "truncated"),
        ("oversized", 413, "too large"),
        ("bomb", 413, "too large"),
        ("video", 415, "not supported yet"),
        ("long-audio", 413, "too long"),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(
    upload, settings, monkeypatch, face_photo, speech_clip, case, status, words
):
    make_data = {
        "empty": lambda: b"",
        "text-named-jpg": lambda: b"Hello, I am a text file pretending to be a photo.",
        "truncated": lambda: face_photo[: len(face_photo) // 3],
        "oversized": lambda: face_photo,
        "bomb": lambda: image_as(face_photo, "png", max_side=1280),  # 1.2 MP
        "video": video_mp4,
        "long-audio": lambda: audio_as(speech_clip, "wav"),
    }
    data = make_data[case]()
    if case == "oversized":
        settings.MAX_UPLOAD_BYTES = 100_000
    if case == "video":  # as before a video analyser was registered
        monkeypatch.delitem(services.ANALYSERS, "video", raising=False)
    if case == "bomb":
        settings.MAX_IMAGE_PIXELS = 1_000_000
    settings.MAX_AUDIO_SECONDS = 2
    response = upload(data, "photo.jpg")
    assert response.status_code == status
    assert words in response.json()["error"]
    assert Analysis.objects.count() == 0
    assert stored_files(settings.MEDIA_ROOT) == []
    # The page (no JavaScript) shows the same message with the same status.
    page = upload(data, "photo.jpg", xhr=False)
    assert page.status_code == status and words in page.content.decode()


def test_body_over_the_limit_is_refused_before_parsing(alice_client, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    response = alice_client.post(
        reverse("upload"),
        {"file": SimpleUploadedFile("big.jpg", b"\xff\xd8\xff" + b"0" * 3_000_000)},
        **XHR,
    )
    assert response.status_code == 413
    assert "too large" in response.json()["error"]
    assert Analysis.objects.count() == 0


def test_malformed_multipart_is_a_400(alice_client):
    response = alice_client.generic(
        "POST",
        reverse("upload"),
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\nabc',
        content_type="multipart/form-data; boundary=",
        **XHR,
    )
    assert response.status_code == 400
    assert Analysis.objects.count() == 0


def test_no_file_is_a_400(alice_client):
    response = alice_client.post(reverse("upload"), {}, **XHR)
    assert response.status_code == 400 and response.json()["error"]


def test_upload_needs_the_csrf_token(client, user, face_photo):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(user)
    response = csrf_client.post(
        reverse("upload"), {"file": SimpleUploadedFile("a.jpg", face_photo)}, **XHR
    )
    assert response.status_code == 403
    assert Analysis.objects.count() == 0


def test_another_user_gets_404_everywhere(
    client, other_user, user, face_photo, settings
):
    analysis = services.create_analysis(
        owner=user, upload=face_photo, filename="mine.jpg", enqueue=False
    )
    client.force_login(other_user)
    for name, query in [
        ("analysis-detail", ""),
        ("analysis-media", ""),
        ("analysis-media", "?variant=thumb"),
        ("analysis-media", "?download=1"),
        ("analysis-delete", ""),
    ]:
        assert client.get(reverse(name, args=[analysis.pk]) + query).status_code == 404
    assert (
        client.post(reverse("analysis-delete", args=[analysis.pk])).status_code == 404
    )
    assert client.get(reverse("analysis-status") + f"?ids={analysis.pk}").json() == {
        "analyses": []
    }
    assert "mine.jpg" not in client.get(reverse("history")).content.decode()
    assert json.loads(client.get(reverse("history-export-json")).content) == {
        "analyses": []
    }
    assert "mine.jpg" not in client.get(reverse("history-export-csv")).content.decode()
    assert Analysis.objects.filter(pk=analysis.pk).exists()
    assert len(stored_files(settings.MEDIA_ROOT)) == 3


def test_media_is_served_privately(alice_client, user, face_photo):
    analysis = services.create_analysis(
        owner=user, upload=face_photo, filename='x"y.jpg', enqueue=False
    )
    response = alice_client.get(reverse("analysis-media", args=[analysis.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "private" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == face_photo
    download = alice_client.get(
        reverse("analysis-media", args=[analysis.pk]) + "?download=1"
    )
    assert download["Content-Disposition"].startswith("attachment")
    thumb = alice_client.get(
        reverse("analysis-media", args=[analysis.pk]) + "?variant=thumb"
    )
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert (
        alice_client.get(
            reverse("analysis-media", args=[analysis.pk]) + "?variant=../../x"
        ).status_code
        == 404
    )


def test_pending_result_page_and_status_endpoint(alice_client, user, face_photo):
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    page = alice_client.get(
        reverse("analysis-detail", args=[analysis.pk])
    ).content.decode()
    assert "Waiting for a worker" in page and "updates by itself" in page
    status = alice_client.get(
        reverse("analysis-status") + f"?ids={analysis.pk},abc,999999"
    ).json()
    assert [(a["id"], a["status"]) for a in status["analyses"]] == [
        (analysis.pk, "queued")
    ]


def test_failed_result_page_shows_the_reason(alice_client, user, face_photo):
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    services.mark_failed(
        analysis_id=analysis.pk, message="The image is damaged and cannot be read."
    )
    page = alice_client.get(
        reverse("analysis-detail", args=[analysis.pk])
    ).content.decode()
    assert "The analysis failed." in page and "damaged and cannot be read" in page


def make(owner, **fields):
    defaults = {
        "kind": "image",
        "status": "done",
        "emotion": "happy",
        "confidence": 0.9,
        "face_count": 1,
    }
    return Analysis.objects.create(owner=owner, **{**defaults, **fields})


def test_history_filters_and_pagination(alice_client, user):
    for i in range(30):
        make(
            user,
            original_name=f"photo{i}.jpg",
            emotion="sad" if i % 3 == 0 else "happy",
        )
    make(user, kind="audio", original_name="voice.wav", emotion="calm", face_count=0)
    page1 = alice_client.get(reverse("history")).content.decode()
    assert "31 analyses" in page1 and "Page 1 of 2" in page1 and "voice.wav" in page1
    sad = alice_client.get(reverse("history") + "?emotion=sad").content.decode()
    assert "10 analyses match" in sad and "voice.wav" not in sad
    audio = alice_client.get(reverse("history") + "?kind=audio&page=1").content.decode()
    assert "1 analysis match" in audio and "voice.wav" in audio
    future = alice_client.get(
        reverse("history") + "?date_from=2999-01-01"
    ).content.decode()
    assert "Nothing matches these filters" in future
    # Nonsense filters are ignored, not errors.
    assert (
        alice_client.get(
            reverse("history") + "?kind=zzz&date_to=not-a-date&page=x"
        ).status_code
        == 200
    )


def test_dashboard_shows_stats(alice_client, user):
    make(user)
    make(user, emotion="sad")
    make(user, kind="audio", emotion="calm", face_count=0)
    response = alice_client.get(reverse("dashboard"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "chart-distribution" in html and "vendor/chart.umd.min.js" in html
    assert response.context["stats"]["emotions"] == {"happy": 1, "sad": 1, "calm": 1}


def test_empty_dashboard(alice_client):
    html = alice_client.get(reverse("dashboard")).content.decode()
    assert "No results yet" in html and "chart.umd.min.js" not in html


def test_exports(alice_client, user):
    make(user, original_name="=cmd|' /C calc'!A0.jpg", result={"faces": []})
    make(user, kind="audio", emotion="calm", original_name="voice.wav")
    data = json.loads(alice_client.get(reverse("history-export-json")).content)
    assert [r["original_name"] for r in data["analyses"]][1] == "voice.wav"
    response = alice_client.get(reverse("history-export-csv"))
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Cache-Control"] == "private, no-store"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 2 and rows[1]["emotion"] == "calm"
    assert rows[0]["original_name"].startswith("'=")  # no spreadsheet formula injection
    assert json.loads(rows[0]["result"]) == {"faces": []}


def test_delete_one_with_confirmation(
    alice_client, user, face_photo, settings, django_capture_on_commit_callbacks
):
    analysis = services.create_analysis(
        owner=user, upload=face_photo, filename="bye.jpg", enqueue=False
    )
    confirm = alice_client.get(reverse("analysis-delete", args=[analysis.pk]))
    assert (
        confirm.status_code == 200
        and "Delete this analysis?" in confirm.content.decode()
    )
    assert Analysis.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("analysis-delete", args=[analysis.pk]))
    assert response.status_code == 302
    assert not Analysis.objects.exists()
    assert stored_files(settings.MEDIA_ROOT) == []


def test_delete_all_my_data(
    alice_client,
    user,
    other_user,
    face_photo,
    settings,
    django_capture_on_commit_callbacks,
):
    services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    theirs = services.create_analysis(
        owner=other_user, upload=face_photo, enqueue=False
    )
    assert "2 analyses" in alice_client.get(reverse("delete-my-data")).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(reverse("delete-my-data"), follow=True)
    assert "Deleted all your data (2 analyses" in response.content.decode()
    assert list(Analysis.objects.all()) == [theirs]
    assert all(
        f"users/{other_user.pk}/" in str(p) for p in stored_files(settings.MEDIA_ROOT)
    )


def test_deleting_needs_post(alice_client, user):
    analysis = make(user)
    alice_client.get(reverse("analysis-delete", args=[analysis.pk]))
    alice_client.get(reverse("delete-my-data"))
    assert Analysis.objects.filter(pk=analysis.pk).exists()


def test_retry_a_failed_analysis(
    alice_client,
    other_user,
    user,
    face_photo,
    django_capture_on_commit_callbacks,
):
    analysis = services.create_analysis(owner=user, upload=face_photo, enqueue=False)
    services.mark_failed(
        analysis_id=analysis.pk,
        message="The recognition model is not available right now.",
    )
    url = reverse("analysis-retry", args=[analysis.pk])
    assert alice_client.get(url).status_code == 405
    mallory = Client()
    mallory.force_login(other_user)
    assert mallory.post(url).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(url)
    assert response["Location"] == reverse("analysis-detail", args=[analysis.pk])
    analysis.refresh_from_db()
    assert analysis.status == "done", analysis.error
    assert analysis.attempts == 1 and analysis.error == ""


def test_live_session_result_page(alice_client, user):
    result = {
        "duration": 12.0,
        "frames": 40,
        "frames_with_faces": 30,
        "faces_max": 2,
        "emotion": "happy",
        "confidence": 0.7,
        "distribution": {"happy": 0.75, "neutral": 0.25},
        "probabilities": {"happy": 0.7, "neutral": 0.3},
        "timeline_step": 1.0,
        "timeline": [
            {
                "t": float(t),
                "faces": 1,
                "emotion": "happy" if t < 9 else None,
                "confidence": 0.7,
            }
            for t in range(12)
        ],
        "voice": None,
    }
    analysis = make(
        user,
        kind="live",
        emotion="happy",
        face_count=2,
        result=result,
        original_name="Live session",
    )
    html = alice_client.get(
        reverse("analysis-detail", args=[analysis.pk])
    ).content.decode()
    assert "40 frames analysed, 30 with faces" in html
    assert html.count('class="timeline-seg') == 12
    assert 'badge badge-lg emo-happy">happy' in html
    # the share of faces per emotion as bars (the shared probability list)
    assert '<ul class="prob-list" aria-label="Share of faces per emotion">' in html
    assert 'emo-happy"><span style="width: 75.0%"></span></div><span class="num">75%</span>' in html


def test_unknown_kind_falls_back_to_the_headline(alice_client, user):
    analysis = make(user, kind="other", emotion="sad")  # a kind with no result template
    html = alice_client.get(
        reverse("analysis-detail", args=[analysis.pk])
    ).content.decode()
    assert 'badge badge-lg emo-sad">sad' in html


def test_longer_recording_gets_a_timeline_chart(alice_client, upload, speech_clip):
    from tests.media_convert import encode_audio, read_pcm

    clips = sorted(speech_clip.parent.glob("*.flac"))[:3]
    signals = [read_pcm(p) for p in clips]
    rate = signals[0][1]
    joined = np.concatenate([s for s, _ in signals])
    response = upload(encode_audio(joined, rate, "ogg"), "three.ogg")
    analysis = Analysis.objects.get(pk=response.json()["analysis"]["id"])
    assert analysis.status == "done", analysis.error
    assert len(analysis.result["windows"]) > 1
    page = alice_client.get(
        reverse("analysis-detail", args=[analysis.pk])
    ).content.decode()
    assert 'id="timeline-chart"' in page and "vendor/chart.umd.min.js" in page
    assert page.count('class="timeline-seg') == len(analysis.result["windows"])
