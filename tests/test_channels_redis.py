"""The live socket over the REAL Redis channel layer (channels_redis at TEST_REDIS_URL): what a
multi-process deployment uses to reach a person's sockets from any process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connections
from django.test import Client

from recognition.live import sockets

from .conftest import redis_url
from .test_consumers import (
    FIRST,
    NEXT,
    answer,
    assert_face_result,
    connect,
    frame,
    jpeg,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def production_layer_config(url: str) -> dict:
    """CHANNEL_LAYERS exactly as emotionsite.settings builds it when REDIS_URL is set."""
    env = {
        **os.environ,
        "REDIS_URL": url,
        "DJANGO_SETTINGS_MODULE": "emotionsite.settings",
    }
    code = "import json; from django.conf import settings; print(json.dumps(settings.CHANNEL_LAYERS))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
async def redis_layer(settings):
    """The production Redis channel layer with a prefix of its own, so parallel runs never meet;
    flushed after."""
    layers = await sync_to_async(production_layer_config)(redis_url())
    layers["default"]["CONFIG"]["prefix"] = f"test-live-{uuid.uuid4().hex[:8]}"
    settings.CHANNEL_LAYERS = layers
    layer = get_channel_layer()
    assert type(layer).__name__ == "RedisChannelLayer"
    yield layer
    await layer.flush()
    await layer.close_pools()
    await sync_to_async(connections.close_all)()


async def test_group_send_and_receive_round_trip(redis_layer):
    channel = await redis_layer.new_channel()
    await redis_layer.group_add("live-test", channel)
    await redis_layer.group_send(
        "live-test", {"type": "live.ping", "frames": [1, 2, 3]}
    )
    assert await redis_layer.receive(channel) == {
        "type": "live.ping",
        "frames": [1, 2, 3],
    }
    await redis_layer.group_discard("live-test", channel)
    await redis_layer.group_send("live-test", {"type": "live.ping"})
    other = await redis_layer.new_channel()
    await redis_layer.send(other, {"type": "marker"})
    assert await redis_layer.receive(other) == {"type": "marker"}


async def test_consumer_round_trip_through_redis(redis_layer, user, other_user):
    """Frames are answered, the saved session is announced on the owner's group, and signing out
    closes the owner's socket: both group messages travel through Redis."""
    watcher = await redis_layer.new_channel()
    await redis_layer.group_add(f"user-{user.pk}", watcher)

    alice = await connect(user)
    mallory = await connect(other_user)
    await alice.send_to(bytes_data=frame(1, jpeg()))
    assert_face_result(await answer(alice, FIRST), 1)
    await alice.send_json_to({"type": "stop"})
    saved = await answer(alice, NEXT)
    assert saved["type"] == "saved" and saved["id"]
    update = await asyncio.wait_for(redis_layer.receive(watcher), NEXT)
    assert update["type"] == "analysis.update"
    assert (
        update["analysis"]["id"] == saved["id"] and update["analysis"]["kind"] == "live"
    )

    client = Client()
    await sync_to_async(client.force_login)(user)
    await sync_to_async(client.post)("/accounts/logout/")
    assert await alice.receive_output(timeout=NEXT) == {
        "type": "websocket.close",
        "code": 4401,
    }
    await mallory.send_json_to({"type": "ping"})
    assert (await answer(mallory, NEXT))["type"] == "pong"
    await mallory.disconnect()
    assert sockets.live_group(user.pk) != sockets.live_group(other_user.pk)


async def test_an_idle_socket_outlives_the_redis_read_timeout(redis_layer, user):
    """redis-py 8 times reads out after 5 s by default, as long as channels_redis blocks waiting
    for a message: without the settings' socket_timeout an idle live socket dies here."""
    socket = await connect(user)
    await asyncio.sleep(7)
    await socket.send_json_to({"type": "ping"})
    assert (await answer(socket, NEXT))["type"] == "pong"
    await socket.disconnect()
