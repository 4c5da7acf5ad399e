"""docs/websockets.md lists exactly the message types, error codes and close codes the websocket
code sends and accepts (read from the code's syntax tree), and the messages the consumers really
send carry only documented fields."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from emotionsite.asgi import application
from recognition.analyses import consumers as consumers_status
from recognition.analyses import services
from recognition.analyses.models import Analysis
from recognition.live import consumers, pipeline, protocol

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "websockets.md"
LIVE, STATUS = "/ws/live/", "/ws/analyses/"


def doc_sections() -> dict[str, str]:
    """Socket path -> the text of its ``## `path` `` section."""
    parts = re.split(r"^## `(/ws/[a-z/]+)`\s*$", DOC.read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def documented_messages(path: str) -> dict[tuple[str, str], set[str]]:
    """(direction, type) -> field names of the message rows in that socket's tables."""
    rows = re.findall(
        r"^\| (client|server) → \w+ \| `([a-z.]+)` \|([^|]*)\|",
        doc_sections()[path],
        flags=re.MULTILINE,
    )
    return {
        (direction, kind): set(re.findall(r"`([a-z_]+)`", fields))
        for direction, kind, fields in rows
    }


def types(path: str, direction: str) -> set[str]:
    return {kind for d, kind in documented_messages(path) if d == direction}


def tree(module) -> ast.Module:
    return ast.parse(Path(module.__file__).read_text())


def sent_types(module) -> set[str]:
    """Every ``"type": "..."`` in a dict literal and ``.update(type="...")`` in the module."""
    found = set()
    for node in ast.walk(tree(module)):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "type"
                    and isinstance(value, ast.Constant)
                ):
                    found.add(value.value)
        if isinstance(node, ast.Call):
            found |= {
                k.value.value
                for k in node.keywords
                if k.arg == "type" and isinstance(k.value, ast.Constant)
            }
    return found


def accepted_text_types() -> set[str]:
    """The strings ``protocol.parse_text`` compares the message's ``kind`` with."""
    parse_text = next(
        n
        for n in ast.walk(tree(protocol))
        if isinstance(n, ast.FunctionDef) and n.name == "parse_text"
    )
    found = set()
    for node in ast.walk(parse_text):
        if (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Name)
            and node.left.id == "kind"
        ):
            for other in node.comparators:
                items = other.elts if isinstance(other, ast.Tuple) else [other]
                found |= {
                    i.value
                    for i in items
                    if isinstance(i, ast.Constant) and isinstance(i.value, str)
                }
    return found


def error_codes() -> set[str]:
    """``code="..."`` passed to, or defaulted in, the live socket's error paths."""
    found = set()
    for module in (consumers, protocol, pipeline):
        for node in ast.walk(tree(module)):
            if isinstance(node, ast.Call):
                found |= {
                    k.value.value
                    for k in node.keywords
                    if k.arg == "code"
                    and isinstance(k.value, ast.Constant)
                    and isinstance(k.value.value, str)
                }
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.kwonlyargs
                for arg, default in zip(args, node.args.kw_defaults, strict=True):
                    if arg.arg == "code" and isinstance(default, ast.Constant):
                        found.add(default.value)
    return found


def test_every_live_message_type_is_documented_and_no_other():
    assert types(LIVE, "server") == sent_types(consumers)
    assert types(LIVE, "client") == accepted_text_types()


def test_every_status_message_type_is_documented_and_no_other():
    assert types(STATUS, "server") == sent_types(consumers_status)
    assert types(STATUS, "client") == {"ping"}
    assert '"ping"' in Path(consumers_status.__file__).read_text()


def test_binary_kinds_and_header_are_documented():
    section = doc_sections()[LIVE]
    kinds = {
        int(k) for k in re.findall(r"^- \*\*kind (\d)", section, flags=re.MULTILINE)
    }
    assert kinds == {protocol.KIND_FRAME, protocol.KIND_PCM, protocol.KIND_AUDIO}
    assert protocol.HEADER.format == ">BI" and protocol.HEADER.size == 5
    assert 'struct.pack(">BI"' in section and "big-endian" in section


def test_error_and_close_codes_are_documented_and_no_other():
    section = doc_sections()[LIVE]
    table = section.split("### Error codes", 1)[1].split("###", 1)[0]
    assert (
        set(re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE))
        == error_codes()
    )
    closes = set(
        map(
            int,
            re.findall(r"^\| (4\d\d\d) \| the server \|", section, flags=re.MULTILINE),
        )
    )
    assert closes == {consumers.CLOSE_UNAUTHENTICATED, consumers.CLOSE_RATE}


# --- the consumers, driven through the real ASGI stack ---------------------------------------


@pytest.fixture
async def _no_model_warm_up(monkeypatch):
    """The live socket warms the face model up on connect; these messages need no model."""
    monkeypatch.setattr(pipeline, "warm_up", lambda: None)
    yield
    await sync_to_async(connections.close_all)()


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def signed_in_socket(user, path: str) -> WebsocketCommunicator:
    cookie = await sync_to_async(session_cookie)(user)
    socket = WebsocketCommunicator(
        application,
        path,
        headers=[(b"origin", b"http://testserver"), (b"cookie", cookie)],
    )
    connected, _ = await socket.connect(timeout=20)
    assert connected
    return socket


def assert_documented(path: str, message: dict) -> None:
    fields = documented_messages(path).get(("server", message["type"]))
    assert fields is not None, message
    assert set(message) - {"type"} <= fields, (message, fields)


@pytest.mark.django_db(transaction=True)
async def test_live_socket_sends_only_documented_messages(user, _no_model_warm_up):
    socket = await signed_in_socket(user, LIVE)
    seen = []
    for sent in (
        {"type": "hello"},
        {"type": "ping"},
        {"type": "nonsense"},
        {"type": "stop"},
    ):
        await socket.send_json_to(sent)
        seen.append(await socket.receive_json_from(timeout=20))
    await socket.send_to(
        bytes_data=b"\x09\x00\x00\x00\x07payload"
    )  # unknown binary kind
    seen.append(await socket.receive_json_from(timeout=20))
    await socket.disconnect()

    assert [m["type"] for m in seen] == ["ready", "pong", "error", "saved", "error"]
    for message in seen:
        assert_documented(LIVE, message)
    assert seen[2]["code"] == "invalid" and seen[4] == {
        **seen[4],
        "code": "invalid",
        "seq": 7,
    }


@pytest.mark.django_db(transaction=True)
async def test_status_socket_sends_only_documented_messages(user):
    socket = await signed_in_socket(user, STATUS)
    await socket.send_to(text_data='{"type": "ping"}')
    pong = await socket.receive_json_from(timeout=10)
    analysis = await sync_to_async(Analysis.objects.create)(
        owner=user, kind="image", original_name="a.jpg"
    )
    await get_channel_layer().group_send(
        f"user-{user.pk}",
        {"type": "analysis.update", "analysis": services.analysis_message(analysis)},
    )
    update = await socket.receive_json_from(timeout=10)
    await socket.disconnect()
    await sync_to_async(connections.close_all)()

    assert pong == {"type": "pong"}
    assert_documented(STATUS, pong)
    assert_documented(STATUS, update)
    documented = re.search(r"`analysis`: \{([^}]*)\}", doc_sections()[STATUS]).group(1)
    assert set(update["analysis"]) == set(re.findall(r"`([a-z_]+)`", documented))


def returned_keys(function_name: str) -> set[str]:
    """Keys of the dict literal that ``pipeline.<function_name>`` returns."""
    function = next(
        n
        for n in ast.walk(tree(pipeline))
        if isinstance(n, ast.FunctionDef) and n.name == function_name
    )
    returned = [
        n.value
        for n in ast.walk(function)
        if isinstance(n, ast.Return) and isinstance(n.value, ast.Dict)
    ]
    return {k.value for d in returned for k in d.keys if isinstance(k, ast.Constant)}


def test_result_and_voice_fields_are_the_ones_the_analysis_returns():
    """The two replies that need a model: their documented fields against the code that builds
    them (``_analyse`` adds ``seq`` and ``server_ms``; a frame's ``queue_ms`` goes in timings)."""
    documented = documented_messages(LIVE)
    frame = returned_keys("analyze_frame")
    voice = returned_keys("analyze_voice")
    assert {"width", "faces", "timings"} <= frame and {"emotion", "speech"} <= voice
    assert frame | {"seq", "server_ms", "queue_ms"} <= documented[("server", "result")]
    assert voice | {"seq", "server_ms"} <= documented[("server", "voice")]
