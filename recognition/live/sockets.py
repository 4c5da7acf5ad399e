"""Channel-layer groups of the live sockets: one per person, so signing out closes all of
their live sockets in every process.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

log = logging.getLogger("recognition.live")  # the name the logs have always shown


def live_group(user_id: int) -> str:
    """Group of one person's live sockets: signing out closes them all (any process)."""
    return f"live-user-{user_id}"


@receiver(user_logged_out)
def close_live_sockets_on_logout(sender, request, user, **kwargs) -> None:
    """A signed-out session must stop streaming at once, not when the socket happens to drop."""
    if user is None or get_channel_layer() is None:
        return
    try:
        async_to_sync(get_channel_layer().group_send)(
            live_group(user.pk), {"type": "live.close", "code": 4401}
        )
    except Exception as exc:  # noqa: BLE001 - a layer outage must not break signing out
        log.warning("could not close live sockets of user %s: %s", user.pk, exc)
