"""Video: decoding, sampling, tracking, the sound track, fusion, limits, damaged files, and the
page/API flow with eager Celery. The videos are made here (tests/video_media.py) from the real
test photo (a slow pan and zoom, 640x480) and a real RAVDESS speech clip; inference uses the
shipped face and voice models."""

from __future__ import annotations

import io
import random
import subprocess

import av
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from recognition.analyses import media, services
from recognition.analyses.models import Analysis
from recognition.inference import faces, fusion, registry, tracking, video
from recognition.inference.errors import InvalidMedia
from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS
from tests import test_api
from tests.video_media import make_video

SECONDS = 3.0
# The API tests' fixtures: a client signed in with alice's token.
alice_api, token = test_api.alice_api, test_api.token
XHR = {"HTTP_ACCEPT": "application/json", "HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


@pytest.fixture(scope="module")
def talking() -> bytes:
    """3 s, 640x480, 25 fps H.264 panning over six faces, with an angry speech clip (AAC)."""
    return make_video(seconds=SECONDS)


@pytest.fixture(scope="module")
def silent() -> bytes:
    """The same picture without a sound track (2 s)."""
    return make_video(seconds=2.0, speech=None)


@pytest.fixture(scope="module")
def talking_result(talking) -> dict:
    return video.analyze_video(talking, sample_fps=4.0)


@pytest.fixture(scope="module")
def silent_result(silent) -> dict:
    return video.analyze_video(silent, sample_fps=4.0)


def stored_files(settings) -> list:
    return sorted(p for p in settings.MEDIA_ROOT.rglob("*") if p.is_file())


def damaged_videos() -> dict[str, bytes]:
    """Ways a video upload can be broken, each made from a real video."""
    plain = make_video(seconds=1.0, fps=10, speech=None)
    faststart = make_video(seconds=1.0, fps=10, speech=None, faststart=True)
    mdat = faststart.find(b"mdat")
    garbled = bytearray(faststart)
    rng = random.Random(7)
    garbled[mdat + 8 :] = bytes(
        rng.randrange(256) for _ in range(len(garbled) - mdat - 8)
    )
    return {
        "cut in half": plain[: len(plain) // 2],  # the index (moov) is at the end: gone
        "pictures garbled": bytes(garbled),  # index fine, no frame decodes
        "header then noise": plain[:32]
        + bytes(rng.randrange(256) for _ in range(4000)),
    }


# --- sampling, faces, tracking --------------------------------------------------------------


def test_timeline_follows_the_sampling_rate(talking_result):
    timeline = talking_result["timeline"]
    assert len(timeline) == round(SECONDS * 4)
    times = [p["t"] for p in timeline]
    assert times[0] == 0.0 and times == sorted(times)
    # each sample is the frame at its slot k / 4 s, within half a 25 fps frame
    assert np.allclose(times, np.arange(len(times)) / 4, atol=0.5 / 25 + 1e-6)
    assert talking_result["duration"] == pytest.approx(SECONDS, abs=0.05)
    assert (talking_result["width"], talking_result["height"]) == (640, 480)
    assert talking_result["sample_fps"] == 4.0


def test_other_rates_and_faces_as_the_photo_pipeline_finds_them(silent):
    result = video.analyze_video(silent, sample_fps=2.0)
    assert len(result["timeline"]) == 4
    # Faces classified in batches across frames are what faces.analyze_image finds per frame
    # when it follows the faces the same way (a live session's tracks: the same detector views
    # and the same remembered alignment of a tilted face).
    frames = video.decode_samples(
        silent, sample_fps=2.0, max_seconds=10, max_pixels=10**6
    ).samples
    tracks = tracking.FaceTracks(tracking.IoUTracker(max_gap=round(video.TRACK_MAX_GAP_SECONDS * 2.0)), turn_every=1)
    for point, frame in zip(result["timeline"], frames, strict=True):
        photo = faces.analyze_image(frame.bgr, tracks=tracks)["faces"]
        assert [f["box"] for f in point["faces"]] == [f["box"] for f in photo]
        for mine, theirs in zip(point["faces"], photo, strict=True):
            assert mine["emotion"] == theirs["emotion"]
            for label, p in theirs["probabilities"].items():
                assert mine["probabilities"][label] == pytest.approx(p, abs=1e-3)


def test_faces_are_found_and_the_nearest_person_keeps_one_track(talking_result):
    timeline = talking_result["timeline"]
    # six people; the pan loses one or two at the edges
    assert all(len(p["faces"]) >= 4 for p in timeline)
    largest = [
        max(p["faces"], key=lambda f: f["box"][2] * f["box"][3]) for p in timeline
    ]
    # the selfie face, followed across the pan
    assert len({f["track"] for f in largest}) == 1
    assert largest[-1]["box"][2] > largest[0]["box"][2]  # the camera zooms in
    for point in timeline:
        assert len({f["track"] for f in point["faces"]}) == len(point["faces"])
        for face in point["faces"]:
            x, y, w, h = face["box"]
            assert 0 <= x and 0 <= y and x + w <= 640 and y + h <= 480
            assert face["emotion"] in FACE_EMOTIONS
            assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    people = talking_result["faces"]
    # six people, each one track although the camera pans and zooms
    assert len(people) == 6
    selfie = next(f for f in people if f["track"] == largest[0]["track"])
    assert selfie["samples"] == len(timeline) and selfie["first"] == 0.0
    assert sum(f["samples"] for f in people) == sum(len(p["faces"]) for p in timeline)


def test_tracker_links_overlapping_boxes_and_starts_new_tracks():
    tracker = video.IoUTracker(max_gap=1)
    assert tracker.update([[0, 0, 10, 10], [50, 50, 10, 10]], 0) == [1, 2]
    assert tracker.update([[52, 51, 10, 10], [1, 1, 10, 10]], 1) == [2, 1]
    assert tracker.update([[200, 200, 10, 10]], 2) == [3]  # a stranger
    # track 1 was unseen for 2 samples: gone
    assert tracker.update([[2, 2, 10, 10]], 3) == [4]


def test_tracker_follows_a_face_that_moves_more_than_it_overlaps():
    """A face panning 25 px per sample and missed by the detector once has moved 50 px between
    two detections (IoU 0.09); where its track predicts it to be, it overlaps again."""
    tracker = video.IoUTracker(max_gap=2)
    ids = [tracker.update([[100 + 25 * i, 50, 60, 60]], i)[0] for i in (0, 1, 2, 4, 5)]
    assert ids == [1, 1, 1, 1, 1]
    assert video.iou([150, 50, 60, 60], [200, 50, 60, 60]) < video.TRACK_IOU


def test_rotated_phone_video_is_analysed_upright(tmp_path):
    """A portrait phone video stores sideways pixels plus a display rotation: frames are turned
    the way players (here the ffmpeg command line) show them, so boxes match the picture and
    the faces, sideways in the stored pixels, are found."""
    clip = make_video(seconds=1.0, fps=10, speech=None, rotation=-90, size=(360, 480))
    path = tmp_path / "portrait.mp4"
    path.write_bytes(clip)
    shown = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    first = video.decode_samples(
        clip, sample_fps=1.0, max_seconds=10, max_pixels=10**6
    ).samples[0]
    assert first.bgr.shape == (480, 360, 3)
    assert np.array_equal(
        first.bgr, np.frombuffer(shown, np.uint8).reshape(480, 360, 3)
    )
    result = video.analyze_video(clip, sample_fps=2.0)
    assert (result["width"], result["height"]) == (360, 480)
    assert all(len(p["faces"]) >= 3 for p in result["timeline"])


# --- sound and fusion -----------------------------------------------------------------------


def test_voice_is_heard_on_the_sound_track(talking_result):
    voice = talking_result["voice"]
    assert voice["speech"] is True and voice["emotion"] in VOICE_EMOTIONS
    assert talking_result["model"]["voice"]["name"] == registry.served_name("voice")
    speech = [w for w in voice["windows"] if w["emotion"]]
    heard = [p for p in talking_result["timeline"] if p["voice"]]
    assert heard, "no timeline point got the voice"
    for point in talking_result["timeline"]:
        inside = any(w["start"] - 1e-3 <= point["t"] <= w["end"] + 1e-3 for w in speech)
        assert (point["voice"] is not None) == inside
    for point in heard:
        assert point["voice"]["emotion"] in VOICE_EMOTIONS
        assert point["voice"]["start"] <= point["t"] <= point["voice"]["end"]


def test_fused_emotion_for_every_moment_and_the_clip(talking_result):
    for point in talking_result["timeline"]:
        fused = point["fused"]
        assert fused["emotion"] in FACE_EMOTIONS
        assert sum(fused["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert fused["emotion"] == max(
            fused["probabilities"], key=fused["probabilities"].get
        )
        assert fused["sources"] == (["face", "voice"] if point["voice"] else ["face"])
    overall = talking_result["fused"]
    assert overall["emotion"] in FACE_EMOTIONS and overall["sources"] == [
        "face",
        "voice",
    ]
    mean = np.mean(
        [
            [p["fused"]["probabilities"][c] for c in FACE_EMOTIONS]
            for p in talking_result["timeline"]
        ],
        axis=0,
    )
    assert overall["emotion"] == FACE_EMOTIONS[int(np.argmax(mean))]
    assert overall["confidence"] == pytest.approx(mean.max(), abs=1e-3)
    # The weights stored with the result are the ones the served models' cards give.
    face_card = registry.get_model(task="face").card
    voice_card = registry.get_model(task="voice").card
    assert talking_result["fusion"] == fusion.weights(face_card, voice_card)


def test_labels_map_onto_the_face_set():
    p = fusion.to_common(
        {"neutral": 0.1, "calm": 0.3, "fearful": 0.2, "surprised": 0.25, "angry": 0.15}
    )
    assert dict(zip(fusion.COMMON, p.round(4), strict=True)) == {
        "angry": 0.15, "disgust": 0.0, "fear": 0.2, "happy": 0.0, "neutral": 0.4, "sad": 0.0, "surprise": 0.25,
    }  # fmt: skip
    assert (
        fusion.to_common({c: 0.0 for c in VOICE_EMOTIONS}) is None
    )  # a window without speech


def _card(classes, confusion) -> dict:
    return {"classes": list(classes), "metrics": {"test": {"confusion": confusion}}}


def test_reliability_is_youden_j_from_the_confusion_matrix():
    n = len(FACE_EMOTIONS)
    perfect = _card(FACE_EMOTIONS, (np.eye(n) * 10).tolist())
    says_angry = np.zeros((n, n))
    says_angry[:, 0] = 10  # recall 1 for angry, but it says angry for everything
    assert set(fusion.reliability(perfect)["per_class"].values()) == {1.0}
    assert set(
        fusion.reliability(_card(FACE_EMOTIONS, says_angry.tolist()))[
            "per_class"
        ].values()
    ) == {0.0}
    # Voice: calm and neutral rows/columns merge before J is taken.
    m = len(VOICE_EMOTIONS)
    voice = np.eye(m) * 10
    voice[0, 1] = voice[1, 0] = 10  # neutral <-> calm confusions are right once merged
    assert (
        fusion.reliability(_card(VOICE_EMOTIONS, voice.tolist()))["per_class"][
            "neutral"
        ]
        == 1.0
    )
    # No confusion matrix: chance-corrected accuracy for every class; nothing: the default.
    by_accuracy = fusion.reliability(
        {"classes": list(FACE_EMOTIONS), "metrics": {"test": {"accuracy": 4 / 7}}}
    )
    assert by_accuracy["per_class"]["sad"] == pytest.approx(0.5)
    assert set(fusion.reliability({})["per_class"].values()) == {
        fusion.DEFAULT_RELIABILITY
    }


def test_the_more_reliable_model_decides():
    n = len(FACE_EMOTIONS)
    good = _card(FACE_EMOTIONS, (np.eye(n) * 10).tolist())
    useless = np.zeros((len(VOICE_EMOTIONS), len(VOICE_EMOTIONS)))
    useless[:, 4] = 10
    useless_voice = _card(VOICE_EMOTIONS, useless.tolist())
    face_happy = fusion.to_common({"happy": 0.8, "sad": 0.2})
    voice_sad = fusion.to_common({"sad": 0.9, "angry": 0.1})
    assert (
        fusion.fuse(face_happy, voice_sad, fusion.weights(good, useless_voice))[
            "emotion"
        ]
        == "happy"
    )
    good_voice = _card(VOICE_EMOTIONS, (np.eye(len(VOICE_EMOTIONS)) * 10).tolist())
    useless_face = np.zeros((n, n))
    useless_face[:, 0] = 10
    assert (
        fusion.fuse(
            face_happy,
            voice_sad,
            fusion.weights(_card(FACE_EMOTIONS, useless_face.tolist()), good_voice),
        )["emotion"]
        == "sad"
    )
    # One modality alone is passed through unchanged; none gives nothing.
    alone = fusion.fuse(face_happy, None, fusion.weights(good, good_voice))
    assert alone["sources"] == ["face"] and alone["probabilities"][
        "happy"
    ] == pytest.approx(0.8)
    assert fusion.fuse(None, None, fusion.weights(good, good_voice)) is None


def test_video_without_audio_is_faces_only_with_a_note(silent_result):
    assert silent_result["has_audio"] is False and silent_result["voice"] is None
    assert any("no sound track" in note for note in silent_result["notes"])
    assert "voice" not in silent_result["model"]
    assert all(
        p["voice"] is None and p["fused"]["sources"] == ["face"]
        for p in silent_result["timeline"]
    )
    assert silent_result["fused"]["sources"] == ["face"]


# --- limits and damaged files (inference level) ---------------------------------------------


def test_limits_are_enforced_while_decoding(silent):
    with pytest.raises(InvalidMedia, match="too long"):
        video.analyze_video(silent, max_seconds=1.0)
    with pytest.raises(InvalidMedia, match="too large"):
        video.analyze_video(silent, max_pixels=320 * 240)
    with pytest.raises(InvalidMedia):
        video.analyze_video(b"")


def test_a_recording_without_duration_reports_progress_and_keeps_the_limit():
    """Browsers' MediaRecorder WebM states no duration: progress comes from the byte position
    and the length limit is enforced while decoding."""
    clip = make_video(seconds=2.0, fps=10, container="webm", live=True, speech=None)
    assert av.open(io.BytesIO(clip)).duration is None
    seen: list[float] = []
    result = video.analyze_video(clip, sample_fps=4.0, progress=seen.append)
    assert len(result["timeline"]) == 8
    assert seen == sorted(seen) and seen[-1] == pytest.approx(0.95)
    assert len(set(seen)) >= 5  # it moved while the frames were decoded
    with pytest.raises(InvalidMedia, match="longer than the limit"):
        video.analyze_video(clip, max_seconds=1.0)


@pytest.mark.parametrize(
    "name", ["cut in half", "pictures garbled", "header then noise"]
)
def test_damaged_videos_are_invalid(name):
    data = damaged_videos()[name]
    with pytest.raises(InvalidMedia):
        video.probe(io.BytesIO(data))
    with pytest.raises(InvalidMedia):
        video.analyze_video(data)


def test_a_cut_off_video_is_analysed_up_to_the_cut_with_a_note():
    whole = make_video(seconds=2.0, fps=10, speech=None, faststart=True)
    cut = whole[: len(whole) * 6 // 10]
    video.probe(io.BytesIO(cut))  # its first pictures decode: accepted at upload
    result = video.analyze_video(cut, sample_fps=4.0)
    assert 0 < result["duration"] < 1.8 and 0 < len(result["timeline"]) < 8
    assert any("cut off" in note for note in result["notes"])


# --- the site: uploads through the page and the API -----------------------------------------


def api_upload(client: APIClient, data: bytes, name: str):
    fh = io.BytesIO(data)
    fh.name = name
    return client.post("/api/v1/analyses/", {"file": fh}, format="multipart")


def page_upload(client, data: bytes, name: str):
    return client.post(
        reverse("upload"), {"file": SimpleUploadedFile(name, data)}, **XHR
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["cut in half", "pictures garbled", "header then noise"]
)
def test_damaged_video_upload_is_400_and_leaves_nothing(
    name, alice_client, alice_api, settings
):
    data = damaged_videos()[name]
    page = page_upload(alice_client, data, "clip.mp4")
    assert page.status_code == 400 and "damaged" in page.json()["error"]
    api = api_upload(alice_api, data, "clip.mp4")
    assert api.status_code == 400 and "damaged" in api.json()["error"]["message"]
    assert Analysis.objects.count() == 0 and stored_files(settings) == []


@pytest.mark.django_db
def test_too_long_or_too_large_video_is_413(alice_client, alice_api, silent, settings):
    settings.MAX_VIDEO_SECONDS = 1.0
    page = page_upload(alice_client, silent, "long.mp4")
    assert page.status_code == 413 and "too long" in page.json()["error"]
    api = api_upload(alice_api, silent, "long.mp4")
    assert api.status_code == 413 and "too long" in api.json()["error"]["message"]
    settings.MAX_VIDEO_SECONDS = 120.0
    settings.MAX_VIDEO_PIXELS = 320 * 240
    page = page_upload(alice_client, silent, "big.mp4")
    assert page.status_code == 413 and "too large" in page.json()["error"]
    assert api_upload(alice_api, silent, "big.mp4").status_code == 413
    assert Analysis.objects.count() == 0 and stored_files(settings) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("container", "content_type"), [("webm", "video/webm"), ("mov", "video/quicktime")]
)
def test_webm_and_mov_are_videos_with_their_sound(user, container, content_type):
    clip = make_video(seconds=1.5, fps=10, container=container)
    analysis = services.create_analysis(
        owner=user, upload=clip, filename=f"clip.{container}", enqueue=False
    )
    assert (analysis.kind, analysis.content_type) == ("video", content_type)
    result = video.analyze_video(clip, sample_fps=2.0)
    assert len(result["timeline"]) == 3 and result["has_audio"]
    assert result["voice"]["duration"] == pytest.approx(1.5, abs=0.1)
    assert all(len(p["faces"]) >= 4 for p in result["timeline"])


@pytest.mark.django_db
def test_an_mp4_with_only_sound_stays_a_recording(user, speech_clip):
    from tests.media_convert import read_pcm

    signal, rate = read_pcm(speech_clip)
    buf = io.BytesIO()
    # isom brand, like a video, but no picture
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (signal * 32767).astype(np.int16).reshape(1, -1),
            format="s16",
            layout="mono",
        )
        frame.sample_rate = rate
        for resampled in av.AudioResampler(
            format="fltp", layout="mono", rate=rate
        ).resample(frame):
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    analysis = services.create_analysis(
        owner=user, upload=buf.getvalue(), filename="talk.mp4", enqueue=False
    )
    assert analysis.kind == media.AUDIO


def _check_done_video(data: dict) -> None:
    assert (
        data["status"] == "done" and data["kind"] == "video" and data["progress"] == 100
    )
    result = data["result"]
    assert len(result["timeline"]) == round(SECONDS * 4)
    assert result["fused"]["emotion"] in FACE_EMOTIONS and result["fused"][
        "sources"
    ] == ["face", "voice"]
    assert data["emotion"] == result["fused"]["emotion"]
    assert data["face_count"] == len(result["faces"]) >= 4
    assert set(data["models"]) == {"face", "voice"}
    assert any(p["voice"] for p in result["timeline"])


@pytest.mark.django_db
def test_upload_through_the_page_runs_to_a_fused_timeline_with_progress(
    alice_client, talking, django_capture_on_commit_callbacks, monkeypatch
):
    pushed: list[tuple[str, int]] = []
    monkeypatch.setattr(
        services, "notify", lambda a: pushed.append((a.status, a.progress))
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = page_upload(alice_client, talking, "party.mp4")
    assert response.status_code == 201, response.content
    analysis_id = response.json()["analysis"]["id"]
    status = alice_client.get(reverse("analysis-status"), {"ids": analysis_id}).json()[
        "analyses"
    ][0]
    assert status["status"] == "done"
    from recognition.api.serializers import AnalysisSerializer

    _check_done_video(AnalysisSerializer(Analysis.objects.get(pk=analysis_id)).data)
    running = [p for s, p in pushed if s == "running"]
    # the start, then steps while the frames decode
    assert running[0] == 10 and len(running) >= 4
    assert running == sorted(running) and 10 < running[-1] <= 95
    assert pushed[-1] == ("done", 100)

    page = alice_client.get(reverse("analysis-detail", args=[analysis_id]))
    html = page.content.decode()
    assert page.status_code == 200
    assert (
        'id="video-player"' in html
        and reverse("analysis-media", args=[analysis_id]) in html
    )
    assert 'id="video-result"' in html and "js/video.js" in html
    assert 'data-source="fused"' in html and "Person 1" in html
    media_response = alice_client.get(reverse("analysis-media", args=[analysis_id]))
    assert (
        media_response.status_code == 200
        and media_response["Content-Type"] == "video/mp4"
    )


@pytest.mark.django_db
def test_upload_through_the_api_runs_to_a_fused_timeline(
    alice_api, talking, django_capture_on_commit_callbacks, other_user
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_upload(alice_api, talking, "party.mp4")
    assert response.status_code == 202, response.content
    data = alice_api.get(response.json()["url"]).json()
    _check_done_video(data)
    point = data["result"]["timeline"][0]
    assert set(point) == {"t", "faces", "voice", "fused"}
    assert {"track", "box", "emotion", "confidence", "probabilities"} <= set(
        point["faces"][0]
    )
    assert set(data["result"]["fused"]) >= {"emotion", "confidence", "probabilities"}
    # Someone else sees nothing of it.
    mallory = APIClient()
    mallory.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_user).key}"
    )
    assert mallory.get(response.json()["url"]).status_code == 404


@pytest.mark.django_db
def test_video_without_audio_through_the_page_shows_the_note(
    alice_client, silent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = page_upload(alice_client, silent, "quiet.mp4")
    analysis = Analysis.objects.get(pk=response.json()["analysis"]["id"])
    assert analysis.status == "done" and analysis.result["voice"] is None
    html = alice_client.get(
        reverse("analysis-detail", args=[analysis.pk])
    ).content.decode()
    assert "no sound track" in html


# --- byte ranges: the player can seek -------------------------------------------------------


def test_range_header_parsing():
    from recognition.analyses.middleware import parse_range

    assert parse_range("bytes=0-99", 1000) == (0, 99)
    assert parse_range("bytes=900-", 1000) == (900, 999)
    assert parse_range("bytes=-100", 1000) == (900, 999)
    assert parse_range("bytes=990-5000", 1000) == (990, 999)
    assert (
        parse_range("bytes=1000-", 1000) is None
        and parse_range("bytes=5-4", 1000) is None
    )
    for bad in ("bytes=0-1,5-9", "items=0-1", "bytes=-", "bytes=a-b"):
        with pytest.raises(ValueError):
            parse_range(bad, 1000)


@pytest.mark.django_db
def test_media_is_served_in_ranges_to_its_owner_only(
    alice_client, client, other_user, user, silent
):
    analysis = services.create_analysis(
        owner=user, upload=silent, filename="quiet.mp4", enqueue=False
    )
    url = reverse("analysis-media", args=[analysis.pk])
    whole = alice_client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert b"".join(whole.streaming_content) == silent
    part = alice_client.get(url, HTTP_RANGE="bytes=100-199")
    assert (
        part.status_code == 206
        and part["Content-Range"] == f"bytes 100-199/{len(silent)}"
    )
    assert (
        part["Content-Length"] == "100"
        and b"".join(part.streaming_content) == silent[100:200]
    )
    tail = alice_client.get(url, HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == silent[-10:]
    beyond = alice_client.get(url, HTTP_RANGE=f"bytes={len(silent)}-")
    assert (
        beyond.status_code == 416
        and beyond["Content-Range"] == f"bytes */{len(silent)}"
    )
    several = alice_client.get(url, HTTP_RANGE="bytes=0-1,5-9")
    assert several.status_code == 200 and b"".join(several.streaming_content) == silent
    client.force_login(other_user)
    assert client.get(url, HTTP_RANGE="bytes=0-99").status_code == 404
