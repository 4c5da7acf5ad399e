"""The live websocket (/ws/live/) through the real ASGI stack: origin check, session auth, message
validation, latest-frame-wins, isolation between users, saving a session; plus the live page."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import time

import numpy as np
import pytest
import soundfile
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from PIL import Image

from emotionsite.asgi import application
from recognition.analyses.models import Analysis
from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS
from recognition.live import persistence, protocol, scheduling
from recognition.live import recorder as live_recorder

from .conftest import MEDIA, SPEECH

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_db_connections():
    """Consumers use the database from asgiref's worker thread; close its connection after each
    test so the test database can be dropped at the end."""
    yield
    await sync_to_async(connections.close_all)()


# The first answer may include loading TensorFlow and the model.
FIRST = 60
NEXT = 20


def jpeg(path=MEDIA / "test_image.jpg", size=(640, 480), quality=80) -> bytes:
    """A webcam-sized JPEG made from a real photo."""
    with Image.open(path) as image:
        out = io.BytesIO()
        image.convert("RGB").resize(size).save(out, "JPEG", quality=quality)
        return out.getvalue()


def blank_jpeg(size=(320, 240)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (128, 128, 128)).save(out, "JPEG")
    return out.getvalue()


def frame(seq: int, payload: bytes, kind: int = protocol.KIND_FRAME) -> bytes:
    return struct.pack(">BI", kind, seq) + payload


def speech_pcm(seconds: float = 2.0) -> bytes:
    samples, rate = soundfile.read(
        SPEECH / "03-01-03-02-01-01-18.flac", dtype="float32"
    )
    assert rate == protocol.PCM_RATE
    start = int(0.8 * rate)  # skip the silence before the words
    return samples[start : start + int(seconds * rate)].astype("<f4").tobytes()


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_socket(
    user=None, origin: bytes = b"http://testserver"
) -> WebsocketCommunicator:
    headers = [(b"origin", origin)]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    return WebsocketCommunicator(application, "/ws/live/", headers=headers)


async def connect(user) -> WebsocketCommunicator:
    socket = await open_socket(user)
    connected, _ = await socket.connect(timeout=NEXT)
    assert connected
    await socket.send_json_to({"type": "hello"})
    ready = await socket.receive_json_from(timeout=NEXT)
    assert ready["type"] == "ready" and ready["resumed"] is False
    return socket


async def answer(socket, timeout=FIRST) -> dict:
    return await socket.receive_json_from(timeout=timeout)


def assert_face_result(reply: dict, seq: int, width=640, height=480) -> None:
    assert reply["type"] == "result", reply
    assert reply["seq"] == seq
    assert (reply["width"], reply["height"]) == (width, height)
    assert reply["faces"], "the real photo has a clear face"
    for face in reply["faces"]:
        x, y, w, h = face["box"]
        assert 0 <= x < width and 0 <= y < height and w > 0 and h > 0
        assert x + w <= width + 1 and y + h <= height + 1
        assert face["emotion"] in FACE_EMOTIONS
        assert set(face["probabilities"]) == set(FACE_EMOTIONS)
        assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-2)
        assert face["confidence"] == pytest.approx(
            max(face["probabilities"].values()), abs=1e-3
        )
    assert reply["server_ms"] > 0
    assert {"decode_ms", "detect_ms", "classify_ms", "queue_ms"} <= set(
        reply["timings"]
    )


# --- connection ---------------------------------------------------------------------------------


async def test_anonymous_socket_is_closed_with_4401():
    socket = await open_socket(None)
    connected, _ = await socket.connect()
    assert connected  # accepted only to deliver the close code the page understands
    assert await socket.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4401,
    }
    await socket.disconnect()


async def test_foreign_origin_is_refused(user):
    socket = await open_socket(user, origin=b"http://evil.example")
    connected, _ = await socket.connect()
    assert not connected
    await socket.disconnect()


async def test_ping_and_ready(user):
    socket = await connect(user)
    await socket.send_json_to({"type": "ping"})
    assert (await answer(socket, NEXT))["type"] == "pong"
    await socket.disconnect()


# --- frames -------------------------------------------------------------------------------------


async def test_binary_frame_of_a_real_face_is_answered_with_boxes(user):
    socket = await connect(user)
    await socket.send_to(bytes_data=frame(7, jpeg()))
    assert_face_result(await answer(socket), 7)
    await socket.disconnect()


async def test_base64_json_frame_and_large_frame_in_original_coordinates(user):
    """The JSON fallback works, and a frame larger than the inference width is analysed smaller
    but answered in the frame's own pixels."""
    socket = await connect(user)
    data = "data:image/jpeg;base64," + base64.b64encode(jpeg(size=(1280, 960))).decode()
    await socket.send_json_to({"type": "frame", "seq": 3, "data": data})
    assert_face_result(await answer(socket), 3, width=1280, height=960)
    await socket.disconnect()


BAD_MESSAGES = [
    ({"text_data": "not json"}, "JSON"),
    ({"text_data": "[1, 2]"}, "JSON objects"),
    ({"text_data": json.dumps({"type": "teleport"})}, "Unknown message type"),
    ({"text_data": json.dumps({"type": 5})}, "string 'type'"),
    ({"text_data": json.dumps({"type": "frame", "seq": "1", "data": "AAAA"})}, "seq"),
    ({"text_data": json.dumps({"type": "frame", "seq": 1, "data": 12})}, "base64"),
    ({"text_data": json.dumps({"type": "frame", "seq": -1, "data": "AAAA"})}, "seq"),
    ({"text_data": json.dumps({"type": "frame", "seq": 1, "data": "***"})}, "base64"),
    ({"text_data": json.dumps({"type": "hello", "session": 5})}, "session"),
    (
        {"text_data": "[" * 100_000},
        "JSON",
    ),  # nesting deep enough to overflow the parser
    ({"bytes_data": b"\x01\x00"}, "too short"),
    ({"bytes_data": frame(9, b"abc", kind=42)}, "Unknown binary message kind"),
    ({"bytes_data": frame(10, b"x" * (600 * 1024))}, "too large"),
    (
        {
            "text_data": json.dumps(
                {"type": "frame", "seq": 1, "data": "A" * (800 * 1024)}
            )
        },
        "too large",
    ),
]


@pytest.mark.parametrize(("message", "expected"), BAD_MESSAGES)
async def test_malformed_and_oversized_messages_get_an_error(user, message, expected):
    socket = await connect(user)
    await socket.send_to(**message)
    reply = await answer(socket, NEXT)
    assert reply["type"] == "error" and expected.lower() in reply["message"].lower(), (
        reply
    )
    await socket.send_json_to({"type": "ping"})
    assert (await answer(socket, NEXT))["type"] == "pong"  # the socket is still usable
    await socket.disconnect()


def png_bomb() -> bytes:
    """A tiny valid PNG whose header claims 30000 x 30000 pixels."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    data[16:24] = struct.pack(">II", 30000, 30000)
    return bytes(data)


async def test_unusable_frames_get_an_error_with_their_seq_then_a_real_frame_works(
    user, face_photo
):
    socket = await connect(user)
    bad = [
        (1, b"GIF89a not what we take"),
        (2, b"\x00\x01\x02\x03 random bytes"),
        (3, face_photo[:2000]),  # truncated JPEG
        (4, png_bomb()),
        (5, b"\x89PNG\r\n\x1a\n" + b"\x00" * 50),  # corrupt PNG
    ]
    for seq, payload in bad:
        await socket.send_to(bytes_data=frame(seq, payload))
        reply = await answer(socket)
        assert reply["type"] == "error" and reply["seq"] == seq, reply
        assert reply["message"] and "Traceback" not in reply["message"]
    await socket.send_to(bytes_data=frame(6, jpeg()))
    assert_face_result(await answer(socket), 6)
    await socket.disconnect()


async def test_latest_frame_wins_every_frame_is_answered_once(user):
    socket = await connect(user)
    await socket.send_to(bytes_data=frame(1, jpeg()))
    assert_face_result(await answer(socket), 1)  # warm: the model is loaded
    data = jpeg()
    for seq in range(2, 12):
        await socket.send_to(bytes_data=frame(seq, data))
    replies = [await answer(socket, NEXT) for _ in range(10)]
    by_seq = {r["seq"]: r["type"] for r in replies}
    assert sorted(by_seq) == list(range(2, 12)), "each frame gets exactly one answer"
    assert by_seq[11] == "result", "the newest frame is always analysed"
    assert "dropped" in by_seq.values(), "stale frames are dropped, not queued"
    results = [r["seq"] for r in replies if r["type"] == "result"]
    assert results == sorted(results)
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_message_rate_is_capped_per_connection(user, settings):
    settings.LIVE_MAX_MESSAGES_PER_SECOND = 5
    socket = await connect(user)  # hello used one token
    for _ in range(8):
        await socket.send_json_to({"type": "ping"})
    replies = [await answer(socket, NEXT) for _ in range(8)]
    kinds = [r["type"] for r in replies]
    # A burst of one second's worth (5) minus the hello, plus what refills while sending.
    assert 4 <= kinds.count("pong") <= 6 and kinds.count("error") == 8 - kinds.count(
        "pong"
    )
    assert all(r["code"] == "rate_limited" for r in replies if r["type"] == "error")
    await asyncio.sleep(0.5)
    await socket.send_json_to({"type": "ping"})
    assert (await answer(socket, NEXT))["type"] == "pong"
    # Far over the rate the socket is closed.
    for _ in range(30):
        await socket.send_json_to({"type": "ping"})
    for _ in range(30):
        output = await socket.receive_output(timeout=NEXT)
        if output["type"] == "websocket.close":
            break
    assert output == {"type": "websocket.close", "code": 4429}
    await socket.disconnect()


# --- users --------------------------------------------------------------------------------------


async def test_one_user_never_receives_another_users_results(user, other_user):
    alice = await connect(user)
    mallory = await connect(other_user)
    face, blank = jpeg(), blank_jpeg()
    for i in range(3):
        await alice.send_to(bytes_data=frame(100 + i, face))
        await mallory.send_to(bytes_data=frame(200 + i, blank))
    alice_replies = [await answer(alice) for _ in range(3)]
    mallory_replies = [await answer(mallory) for _ in range(3)]
    assert {r["seq"] for r in alice_replies} == {100, 101, 102}
    assert {r["seq"] for r in mallory_replies} == {200, 201, 202}
    assert any(r["type"] == "result" and r["faces"] for r in alice_replies)
    assert all(r["type"] == "dropped" or r["faces"] == [] for r in mallory_replies)
    assert await alice.receive_nothing(timeout=0.3) and await mallory.receive_nothing(
        timeout=0.3
    )
    await alice.disconnect()
    await mallory.disconnect()


async def test_a_dropped_session_resumes_for_its_owner_only(user, other_user, settings):
    settings.LIVE_RESUME_SECONDS = 30
    alice = await connect(user)
    await alice.send_to(bytes_data=frame(1, jpeg()))
    assert_face_result(await answer(alice), 1)
    await alice.send_json_to({"type": "hello"})
    session = (await answer(alice, NEXT))["session"]
    await alice.disconnect()

    mallory = await open_socket(other_user)
    await mallory.connect()
    await mallory.send_json_to({"type": "hello", "session": session})
    reply = await answer(mallory, NEXT)
    assert (
        reply["resumed"] is False
        and reply["frames"] == 0
        and reply["session"] != session
    )
    await mallory.disconnect()

    alice = await open_socket(user)
    await alice.connect()
    await alice.send_json_to({"type": "hello", "session": session})
    reply = await answer(alice, NEXT)
    assert (
        reply["resumed"] is True
        and reply["frames"] == 1
        and reply["session"] == session
    )
    await alice.send_json_to({"type": "stop"})
    saved = await answer(alice, NEXT)
    assert saved["type"] == "saved"
    analysis = await Analysis.objects.aget(pk=saved["id"])
    assert analysis.owner_id == user.pk and analysis.result["frames"] == 1
    await alice.disconnect()


async def test_signing_out_closes_the_users_live_sockets(user, other_user):
    alice = await connect(user)
    mallory = await connect(other_user)
    client = Client()
    await sync_to_async(client.force_login)(user)
    await sync_to_async(client.post)("/accounts/logout/")
    assert await alice.receive_output(timeout=NEXT) == {
        "type": "websocket.close",
        "code": 4401,
    }
    await mallory.send_json_to({"type": "ping"})
    assert (await answer(mallory, NEXT))[
        "type"
    ] == "pong"  # other people are not affected
    await mallory.disconnect()


# --- saving -------------------------------------------------------------------------------------


async def test_stop_saves_a_live_analysis_owned_by_the_user(user, other_user):
    socket = await connect(user)
    for seq in range(1, 4):
        await socket.send_to(bytes_data=frame(seq, jpeg()))
        assert_face_result(await answer(socket), seq)
    await socket.send_to(bytes_data=frame(4, blank_jpeg()))
    assert (await answer(socket))["faces"] == []
    await socket.send_json_to({"type": "stop"})
    saved = await answer(socket, NEXT)
    assert saved["type"] == "saved" and saved["url"] == f"/analyses/{saved['id']}/"

    analysis = await Analysis.objects.aget(pk=saved["id"])
    assert analysis.owner_id == user.pk
    assert (analysis.kind, analysis.status, analysis.progress) == ("live", "done", 100)
    result = analysis.result
    assert result["frames"] == 4 and result["frames_with_faces"] == 3
    assert sum(result["distribution"].values()) == pytest.approx(1.0, abs=1e-3)
    assert analysis.emotion == result["emotion"]
    assert result["distribution"][analysis.emotion] == max(
        result["distribution"].values()
    )
    assert analysis.confidence == pytest.approx(
        result["probabilities"][analysis.emotion]
    )
    assert analysis.face_count == result["faces_max"] >= 1
    times = [point["t"] for point in result["timeline"]]
    assert (
        times
        and times == sorted(times)
        and 0 <= times[0] <= times[-1] <= result["duration"]
    )
    assert all(
        point["emotion"] in FACE_EMOTIONS
        for point in result["timeline"]
        if point["faces"]
    )
    assert result["voice"] is None
    assert analysis.models_used["face"]["name"]
    assert await Analysis.objects.filter(owner=other_user).acount() == 0

    # The socket goes on with a fresh session; stopping it again with nothing saves nothing.
    await socket.send_json_to({"type": "stop"})
    again = await answer(socket, NEXT)
    assert again["type"] == "saved" and again["id"] is None
    assert await Analysis.objects.acount() == 1
    await socket.disconnect()


async def test_an_abandoned_session_is_saved_after_the_grace_period(user, settings):
    settings.LIVE_RESUME_SECONDS = 0.2
    socket = await connect(user)
    await socket.send_to(bytes_data=frame(1, jpeg()))
    assert_face_result(await answer(socket), 1)
    await socket.disconnect()
    for _ in range(50):
        if await Analysis.objects.filter(owner=user, kind="live").aexists():
            break
        await asyncio.sleep(0.1)
    analysis = await Analysis.objects.aget(owner=user, kind="live")
    assert analysis.result["frames"] == 1 and analysis.status == "done"


async def test_microphone_chunks_are_answered_with_the_voice_emotion(user):
    socket = await connect(user)
    await socket.send_to(bytes_data=frame(1, speech_pcm(), kind=protocol.KIND_PCM))
    reply = await answer(socket)
    assert reply["type"] == "voice" and reply["seq"] == 1, reply
    assert reply["speech"] is True and reply["emotion"] in VOICE_EMOTIONS
    assert set(reply["probabilities"]) == set(VOICE_EMOTIONS)
    silence = np.zeros(2 * protocol.PCM_RATE, dtype="<f4").tobytes()
    await socket.send_to(bytes_data=frame(2, silence, kind=protocol.KIND_PCM))
    quiet = await answer(socket)
    assert (
        quiet["type"] == "voice"
        and quiet["speech"] is False
        and quiet["emotion"] is None
    )
    for seq, payload in (
        (3, b"\x00" * 7),
        (4, np.full(8000, np.nan, "<f4").tobytes()),
        (5, b"\x00" * (4 * 16000 * 6)),
        (6, jpeg()[:32000]),  # a photo sent as audio: wrong kind of data
    ):
        await socket.send_to(bytes_data=frame(seq, payload, kind=protocol.KIND_PCM))
        error = await answer(socket)
        assert error["type"] == "error" and error["seq"] == seq, error
    await socket.send_json_to({"type": "stop"})
    saved = await answer(socket, NEXT)
    analysis = await Analysis.objects.aget(pk=saved["id"])
    voice = analysis.result["voice"]
    assert voice["chunks"] == 2 and voice["speech_chunks"] == 1
    assert (
        voice["emotion"] == reply["emotion"]
        and voice["timeline"][0]["emotion"] == reply["emotion"]
    )
    assert analysis.result["frames"] == 0 and analysis.emotion == ""
    await socket.disconnect()


# --- service and recorder -----------------------------------------------------------------------


def test_save_live_session_refuses_a_malformed_summary(user):
    recorder = live_recorder.SessionRecorder()
    summary = recorder.summary()
    for bad in (
        {**summary, "frames": -1},
        {**summary, "duration": float("nan")},
        {**summary, "timeline": "x"},
        {},
    ):
        with pytest.raises(ValueError):
            persistence.save_live_session(owner=user, summary=bad)
    assert not Analysis.objects.exists()


def test_recorder_timeline_stays_bounded():
    recorder = live_recorder.SessionRecorder()
    probs = dict.fromkeys(FACE_EMOTIONS, 0.0) | {"happy": 1.0}
    face = {
        "box": [0, 0, 10, 10],
        "emotion": "happy",
        "confidence": 1.0,
        "probabilities": probs,
    }
    for second in range(3 * live_recorder.MAX_TIMELINE_POINTS):
        recorder.started = (
            time.monotonic() - second
        )  # pretend this frame came `second` s in
        recorder.add_frame({"faces": [face], "server_ms": 10.0})
    summary = recorder.summary()
    assert len(summary["timeline"]) <= live_recorder.MAX_TIMELINE_POINTS
    assert summary["timeline_step"] >= 2
    assert (
        summary["distribution"]["happy"] == 1.0
        and sum(summary["distribution"].values()) == 1.0
    )
    assert (
        summary["emotion"] == "happy"
        and summary["frames"] == 3 * live_recorder.MAX_TIMELINE_POINTS
    )


async def test_latest_wins_keeps_one_waiting_item():
    started = asyncio.Event()
    release = asyncio.Event()
    done: list[int] = []

    async def process(item: int) -> None:
        started.set()
        await release.wait()
        done.append(item)

    worker = scheduling.LatestWins(process)
    assert worker.submit(1) is None
    await started.wait()
    assert worker.submit(2) is None  # waits
    assert worker.submit(3) == 2  # replaces the waiting one
    release.set()
    for _ in range(100):
        if len(done) == 2:
            break
        await asyncio.sleep(0.01)
    assert done == [1, 3]
    await worker.aclose()


# --- page ---------------------------------------------------------------------------------------


def test_live_page_needs_sign_in(client):
    response = client.get("/live/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_live_page_renders_for_a_signed_in_user(alice_client):
    response = alice_client.get("/live/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-ws-path="/ws/live/"' in html and "js/live.js" in html
