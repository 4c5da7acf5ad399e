"""/ws/analyses/: signed-in people get their own analyses' status pushes, nobody else's."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from recognition.analyses import services
from recognition.analyses.consumers import AnalysisStatusConsumer
from recognition.analyses.models import Analysis

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(user) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(AnalysisStatusConsumer.as_asgi(), "/ws/analyses/")
    comm.scope["user"] = user
    return comm


async def test_anonymous_is_refused():
    comm = communicator(AnonymousUser())
    connected, code = await comm.connect()
    assert not connected and code == 4401


async def test_owner_gets_pushes_and_others_do_not(user, other_user):
    mine, theirs = communicator(user), communicator(other_user)
    assert (await mine.connect())[0] and (await theirs.connect())[0]
    analysis = await sync_to_async(Analysis.objects.create)(
        owner=user, kind="image", original_name="a.jpg"
    )
    await sync_to_async(services.mark_failed)(
        analysis_id=analysis.pk, message="The image is damaged."
    )
    message = await mine.receive_json_from(timeout=5)
    assert message["type"] == "analysis.update"
    assert message["analysis"]["id"] == analysis.pk
    assert message["analysis"]["status"] == "failed"
    assert message["analysis"]["error"] == "The image is damaged."
    assert await theirs.receive_nothing(timeout=0.3)
    await mine.send_to(text_data='{"type": "ping"}')
    assert await mine.receive_json_from() == {"type": "pong"}
    await mine.send_to(text_data="x" * 100_000)  # ignored, not an error
    assert await mine.receive_nothing(timeout=0.2)
    await mine.disconnect()
    await theirs.disconnect()
