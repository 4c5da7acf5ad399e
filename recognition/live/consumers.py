"""Websocket consumers: authenticate, validate every message, push work off the event loop, reply.

``LiveConsumer`` (/ws/live/) answers webcam frames with faces and emotions and microphone chunks
with the voice emotion; the logic (limits, latest-frame-wins, aggregation, saving) is in
``recognition.live``. Replies are JSON: ``ready``, ``result``, ``voice``, ``dropped``, ``error``,
``saved``, ``pong``. Close codes: 4401 not signed in / signed out, 4429 far over the rate limit.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from recognition.inference.errors import InvalidMedia
from recognition.inference.registry import ModelUnavailable
from recognition.inference.tracking import FaceTracks
from recognition.live import persistence, pipeline, protocol, scheduling, sockets
from recognition.live.recorder import SessionRecorder, parked
from recognition.operations import metrics

log = logging.getLogger("recognition.consumers")  # the name the logs have always shown

CLOSE_UNAUTHENTICATED = 4401
CLOSE_RATE = 4429


class LiveConsumer(AsyncWebsocketConsumer):
    """One browser tab's live session. Results go only to this socket (never to a group)."""

    user: Any
    limits: protocol.LiveLimits
    recorder: SessionRecorder
    session_id: str

    async def connect(self) -> None:
        self.frames: scheduling.LatestWins | None = None
        self.voice: scheduling.LatestWins | None = None
        self.closing = False
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept, then close: a rejected handshake reaches the browser as a bare 1006,
            # whereas 4401 lets the page say "sign in again".
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.limits = protocol.LiveLimits.from_settings()
        self.rate = scheduling.RateLimiter(self.limits.max_messages_per_second)
        self.rejected = 0
        self.recorder = SessionRecorder()
        self.session_id = uuid.uuid4().hex
        self.tracks = FaceTracks()  # this socket's faces, followed from frame to frame
        self.frames = scheduling.LatestWins(self._process_frame)
        self.voice = scheduling.LatestWins(self._process_voice)
        await self.accept()
        metrics.live_session_opened()
        metrics.live_session_started()
        log.info(
            "live session %s opened (user %s)", self.session_id, user.pk,
            extra={"live_session": self.session_id},
        )  # fmt: skip
        await self.channel_layer.group_add(sockets.live_group(user.pk), self.channel_name)
        asyncio.get_running_loop().run_in_executor(pipeline.executor(), pipeline.warm_up)

    async def disconnect(self, code: int) -> None:
        if self.frames is None:
            return
        for worker in (self.frames, self.voice):
            await worker.aclose()
        metrics.live_session_closed()
        log.info(
            "live session %s closed (code %s): %s frames, %s dropped, %.1f s",
            self.session_id, code, self.recorder.frames, self.recorder.dropped,
            self.recorder.elapsed(), extra={"live_session": self.session_id},
        )  # fmt: skip
        await self.channel_layer.group_discard(
            sockets.live_group(self.user.pk), self.channel_name
        )
        if not self.recorder.empty and self.recorder.saved_id is None:
            parked.park(
                (self.user.pk, self.session_id),
                self.recorder,
                self.limits.resume_seconds,
                self._save_parked,
            )

    async def _save_parked(self, recorder: SessionRecorder) -> None:
        try:
            await database_sync_to_async(persistence.save_live_session)(
                owner=self.user, summary=recorder.summary()
            )
        except Exception:
            log.exception(
                "could not save an abandoned live session of user %s", self.user.pk
            )

    # --- incoming -------------------------------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        if self.frames is None or self.closing:
            return
        if not self.rate.allow():
            self.rejected += 1
            if self.rejected > self.limits.max_messages_per_second:
                self.closing = True
                await self.close(code=CLOSE_RATE)
                return
            await self._error(
                "Too many messages: slow down.",
                code="rate_limited",
                seq=_peek_seq(bytes_data),
            )
            return
        self.rejected = max(0, self.rejected - 1)
        try:
            if bytes_data is not None:
                message = protocol.parse_binary(bytes_data, self.limits)
            else:
                message = protocol.parse_text(text_data or "", self.limits)
        except protocol.LiveError as exc:
            await self._error(
                str(exc),
                code=exc.code,
                seq=exc.seq if exc.seq is not None else _peek_seq(bytes_data),
            )
            return
        if message.type == "frame":
            dropped = self.frames.submit(message)
            if dropped is not None:
                self.recorder.dropped += 1
                metrics.live_frame("dropped")
                await self._send({"type": "dropped", "seq": dropped.seq})
        elif message.type in ("pcm", "audio"):
            dropped = self.voice.submit(message)
            if dropped is not None:
                metrics.live_audio("dropped")
                await self._send({"type": "dropped", "seq": dropped.seq, "audio": True})
        elif message.type == "hello":
            await self._hello(message.session)
        elif message.type == "stop":
            await self._stop()
        elif message.type == "ping":
            await self._send({"type": "pong", "t": time.time()})

    async def _hello(self, session: str | None) -> None:
        """Start or resume a session: a reconnecting page sends the id it was given."""
        resumed = False
        if session:
            recorder = parked.take((self.user.pk, session))
            if recorder is not None:
                self.recorder, self.session_id, resumed = recorder, session, True
                log.info(
                    "live session %s resumed", session, extra={"live_session": session}
                )
        await self._send(
            {
                "type": "ready",
                "session": self.session_id,
                "resumed": resumed,
                "frames": self.recorder.frames,
                "duration": round(self.recorder.elapsed(), 2),
                "limits": {
                    "max_message_bytes": self.limits.max_message_bytes,
                    "max_messages_per_second": self.limits.max_messages_per_second,
                    "max_audio_seconds": self.limits.max_audio_seconds,
                },
            }
        )

    async def _stop(self) -> None:
        """Save the session to history and start a fresh one on the same socket."""
        recorder, self.recorder = self.recorder, SessionRecorder()
        stopped, self.session_id = self.session_id, uuid.uuid4().hex
        metrics.live_session_started()
        if recorder.empty:
            await self._send(
                {
                    "type": "saved",
                    "id": None,
                    "message": "Nothing was analysed, so nothing was saved.",
                }
            )
            return
        try:
            analysis = await database_sync_to_async(persistence.save_live_session)(
                owner=self.user, summary=recorder.summary()
            )
        except Exception:
            log.exception("could not save a live session of user %s", self.user.pk)
            await self._error(
                "The session could not be saved. Please try again.", code="save_failed"
            )
            self.recorder = recorder
            return
        recorder.saved_id = analysis.pk
        log.info(
            "live session %s saved as analysis %s (%s frames); new session %s",
            stopped, analysis.pk, recorder.frames, self.session_id,
            extra={"live_session": stopped, "analysis": analysis.pk},
        )  # fmt: skip
        await self._send(
            {
                "type": "saved",
                "id": analysis.pk,
                "url": f"/analyses/{analysis.pk}/",
                "session": self.session_id,
                "summary": {
                    k: analysis.result.get(k)
                    for k in ("duration", "frames", "emotion", "distribution")
                },
            }
        )

    # --- work (runs one at a time per kind, latest wins) -------------------------------------

    async def _process_frame(self, message: protocol.Message) -> None:
        reply = await self._analyse(
            message, "face", "frame", functools.partial(pipeline.analyze_frame, tracks=self.tracks), message.payload
        )
        metrics.live_frame("analysed" if reply is not None else "failed")
        if reply is not None:
            reply.update(type="result")
            reply["timings"]["queue_ms"] = reply.pop("queue_ms")
            self.recorder.add_frame(reply)
            await self._send(reply)

    async def _process_voice(self, message: protocol.Message) -> None:
        reply = await self._analyse(
            message,
            "voice",
            "audio chunk",
            pipeline.analyze_voice,
            message.type,
            message.payload,
        )
        metrics.live_audio("analysed" if reply is not None else "failed")
        if reply is not None:
            reply.update(type="voice")
            del reply["queue_ms"]
            self.recorder.add_voice(reply)
            await self._send(reply)

    async def _analyse(
        self, message: protocol.Message, model: str, what: str, fn: Any, *args: Any
    ) -> dict | None:
        """Run ``fn(*args, limits)`` in the inference pool; on failure answer an error for this
        ``seq`` (the socket stays usable) and return None. Adds seq, server_ms and queue_ms."""
        loop = asyncio.get_running_loop()
        try:
            started, reply = await loop.run_in_executor(
                pipeline.executor(), _timed, fn, *args, self.limits
            )
        except InvalidMedia as exc:
            await self._error(str(exc), code="invalid_media", seq=message.seq)
            return None
        except (ModelUnavailable, ImportError):
            log.exception(
                "live: %s model unavailable (session %s)", model, self.session_id,
                extra={"live_session": self.session_id},
            )  # fmt: skip
            await self._error(
                f"The {model} model is not available right now; try again later.",
                code="unavailable",
                seq=message.seq,
            )
            return None
        except Exception:
            log.exception(
                "live: %s analysis failed (session %s)", what, self.session_id,
                extra={"live_session": self.session_id},
            )  # fmt: skip
            await self._error(
                f"This {what} could not be analysed.", code="failed", seq=message.seq
            )
            return None
        reply.update(
            seq=message.seq,
            server_ms=round((time.perf_counter() - message.received) * 1000, 2),
            queue_ms=round((started - message.received) * 1000, 2),
        )
        return reply

    # --- outgoing and group events ------------------------------------------------------------

    async def _send(self, payload: dict[str, Any]) -> None:
        try:
            await self.send(text_data=json.dumps(payload, separators=(",", ":")))
        except Exception:  # noqa: BLE001 - the socket went away while we were working
            log.debug("live: send after close dropped")

    async def _error(
        self, message: str, *, code: str = "invalid", seq: int | None = None
    ) -> None:
        payload: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if seq is not None:
            payload["seq"] = seq
        await self._send(payload)

    async def live_close(self, event: dict[str, Any]) -> None:
        """Group event: the person signed out somewhere; stop streaming now (what was recorded
        is parked and saved like any dropped session)."""
        self.closing = True
        await self.close(code=int(event.get("code", CLOSE_UNAUTHENTICATED)))


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    """Run ``fn`` in a pool thread and say when it started: queue_ms is the wait for a thread."""
    return time.perf_counter(), fn(*args)


def _peek_seq(data: bytes | None) -> int | None:
    """The seq of a binary message whose body was refused, so the client can settle it."""
    if data is not None and len(data) >= protocol.HEADER.size:
        return protocol.HEADER.unpack_from(data)[1]
    return None
