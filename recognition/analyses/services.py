"""All writes for analyses: create (check, store, enqueue), run (inference), delete.

Why one module over 400 lines: create, run, retry and delete share the status transitions, the
notifications and the metrics of one lifecycle; adapters and tests know them as ``services.*``.

Adapters (the upload page, the REST API, Celery tasks, the live and video features) call these
functions and nothing else to change an ``Analysis``. Contracts (see helper brief):

- ``create_analysis`` raises ``media.MediaRejected`` and then leaves no record and no file.
- ``run_analysis`` is idempotent: a done analysis is returned untouched; otherwise the result is
  written in one transaction (overwriting any earlier partial attempt).
- ``result`` is the inference output as the API returns it: for images ``faces.analyze_image``'s
  dict (width, height, faces[box, emotion, confidence, probabilities], model, timings); for
  audio ``voice.analyze_audio``'s dict (emotion, confidence, probabilities, speech, duration,
  windows, model); for video ``video.analyze_video``'s dict (timeline, fused, faces per track,
  voice, notes, ...).
- Every status change is pushed to the channel group ``user-<owner_id>`` as ``analysis.update``.

New kinds plug in with ``register_analyser(kind, fn)`` (video does, below); until a kind has an
analyser, uploads of that kind are refused with 415.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from recognition.analyses import media, selectors
from recognition.analyses.models import Analysis
from recognition.operations import metrics

ANALYSE_TASK = "recognition.tasks.analyse"  # recognition.analyses.tasks.analyse

logger = logging.getLogger("recognition.services")  # the name the logs have always shown


@dataclass
class Outcome:
    """What an analyser found: the API ``result`` plus the headline columns."""

    result: dict[str, Any]
    emotion: str = ""
    confidence: float | None = None
    face_count: int = 0
    models_used: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


Analyser = Callable[[Analysis], Outcome]
ANALYSERS: dict[str, Analyser] = {}
# Extra upload checks per kind, run after sniffing (e.g. video duration/frame size).
UPLOAD_CHECKS: dict[str, Callable[[media.Inspected], None]] = {
    media.VIDEO: media.check_video_limits
}
# Upload checks that need the file itself, run after those (a video's first frame must decode).
UPLOAD_PROBES: dict[str, Callable[[Any], None]] = {}


def register_analyser(kind: str, analyser: Analyser) -> None:
    """Make ``kind`` uploadable and runnable (the video feature registers itself here)."""
    ANALYSERS[kind] = analyser


# --- notifications -------------------------------------------------------------------------


def analysis_message(analysis: Analysis) -> dict[str, Any]:
    """The small status payload pushed over websockets and returned by the status endpoint."""
    from django.urls import reverse

    return {
        "id": analysis.pk,
        "kind": analysis.kind,
        "status": analysis.status,
        "progress": analysis.progress,
        "emotion": analysis.emotion or None,
        "confidence": analysis.confidence,
        "face_count": analysis.face_count,
        "error": analysis.error or None,
        "original_name": analysis.original_name,
        "url": reverse("analysis-detail", args=[analysis.pk]),
        "finished": analysis.finished.isoformat() if analysis.finished else None,
    }


def current_messages(*, owner: Any, analyses: list[Analysis]) -> list[dict[str, Any]]:
    """Status payloads of just-created analyses as they are now, in the given order. On the
    embedded default (eager Celery) an analysis has already finished inside the upload request
    and its push went out before any page watched it: the upload response must carry it."""
    fresh = {a.pk: a for a in selectors.status_for(owner, [a.pk for a in analyses])}
    return [analysis_message(fresh.get(a.pk, a)) for a in analyses]


def notify(analysis: Analysis) -> None:
    """Tell the owner's open pages about a status change; a broken channel layer never fails
    the analysis (pages fall back to polling)."""
    try:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(
            f"user-{analysis.owner_id}",
            {"type": "analysis.update", "analysis": analysis_message(analysis)},
        )
    except SoftTimeLimitExceeded:
        raise  # the task's time is up wherever it is: the task marks the analysis failed
    except Exception:
        logger.warning("could not push analysis %s update", analysis.pk, exc_info=True)


# --- create --------------------------------------------------------------------------------


def enqueue_analysis(analysis_id: int) -> None:
    """Send the analysis to the workers; a broker outage leaves it queued (logged) rather than
    failing the upload that already committed."""
    try:
        # By name: the task module calls this one, so it is not imported here (no import cycle).
        current_app.tasks[ANALYSE_TASK].delay(analysis_id)
    except Exception:
        logger.exception("could not enqueue analysis %s; it stays queued", analysis_id)
        return  # no sent-mark: requeue_lost() sends it once the broker is back
    _mark_sent(analysis_id)


# A cache entry per enqueued analysis. The cache is the same Redis as the broker, so a Redis
# restart that loses the queued messages loses these marks too; an enqueue that failed never
# set one. requeue_lost() re-sends queued analyses without a mark.
SENT_MARK = "analysis-sent-{}"
SENT_MARK_SECONDS = 24 * 3600


def _mark_sent(analysis_id: int) -> None:
    from django.core.cache import cache

    try:
        cache.set(SENT_MARK.format(analysis_id), 1, SENT_MARK_SECONDS)
    except Exception:  # a cache outage only means a possible (harmless) second send
        logger.warning("could not mark analysis %s as sent", analysis_id, exc_info=True)


def requeue_lost(*, queued_after: float | None = None) -> list[int]:
    """Send again the analyses whose broker message was lost, so none stays stuck (run by Celery
    beat every REQUEUE_LOST_INTERVAL seconds); returns their ids. Re-sending is safe because
    ``run_analysis`` is idempotent.

    - queued for over ``queued_after`` s (REQUEUE_QUEUED_AFTER) with no sent-mark: the enqueue
      failed during a broker outage, or Redis restarted and dropped the queue;
    - running since before the task's hard time limit: its worker died and its message is gone
      (else the broker would have handed it out again); after 3 attempts it is marked failed.
    """
    from datetime import timedelta

    from django.core.cache import cache
    from django.db.models import Q

    now = timezone.now()
    queued_after = (
        settings.REQUEUE_QUEUED_AFTER if queued_after is None else queued_after
    )
    dead_after = float(settings.CELERY_TASK_TIME_LIMIT) + 60
    stale = list(
        Analysis.objects.filter(
            Q(
                status=Analysis.Status.QUEUED,
                created__lt=now - timedelta(seconds=queued_after),
            )
            | Q(
                status=Analysis.Status.RUNNING,
                started__lt=now - timedelta(seconds=dead_after),
            )
        )
        .exclude(kind=Analysis.Kind.LIVE)
        .values_list("pk", "status", "attempts")[:500]
    )
    marks = cache.get_many(
        [SENT_MARK.format(pk) for pk, status, _ in stale if status == "queued"]
    )
    resent = []
    for pk, status, attempts in stale:
        if status == Analysis.Status.QUEUED and SENT_MARK.format(pk) in marks:
            continue  # still waiting in the broker's queue
        if status == Analysis.Status.RUNNING:
            if attempts >= 3:
                mark_failed(
                    analysis_id=pk,
                    message="The analysis was interrupted several times and was stopped.",
                )
                continue
            _set_status(pk, status=Analysis.Status.QUEUED, progress=0)
        logger.warning("re-sending analysis %s (%s, its message was lost)", pk, status)
        enqueue_analysis(pk)
        resent.append(pk)
    return resent


def create_analysis(
    *, owner: Any, upload: Any, filename: str | None = None, enqueue: bool = True
) -> Analysis:
    """Check an upload (magic bytes, size, pixels, duration), store it under the owner's private
    folder, create the record and enqueue its analysis once the transaction commits.

    ``upload`` is a Django ``UploadedFile``/``File`` or raw bytes. Raises ``MediaRejected``; then
    no record and no file exist.
    """
    from recognition.accounts.services import UNVERIFIED_MESSAGE, may_upload

    if not may_upload(owner):  # a sign-up whose e-mail address is not verified yet
        raise media.MediaRejected(UNVERIFIED_MESSAGE, 403)
    fh, size, client_name = media.as_file(upload)
    inspected = media.inspect_upload(fh, size)
    if inspected.kind not in ANALYSERS:
        raise media.MediaRejected(
            f"{inspected.kind.capitalize()} is not supported yet.", 415
        )
    check = UPLOAD_CHECKS.get(inspected.kind)
    if check:
        check(inspected)
    probe = UPLOAD_PROBES.get(inspected.kind)
    if probe:
        probe(fh)
    digest = media.sha256_of(fh)

    analysis = Analysis(
        owner=owner,
        kind=inspected.kind,
        original_name=media.safe_original_name(
            filename if filename is not None else client_name
        ),
        content_type=inspected.content_type,
        size=size,
        sha256=digest,
    )
    written: list[str] = []
    try:
        fh.seek(0)
        name = analysis.media.field.generate_filename(analysis, f"upload.{inspected.ext}")
        analysis.media.name = media.save_file(name, fh)
        written.append(analysis.media.name)
        for variant, data in inspected.renditions.items():
            written.append(
                media.save_file(media.rendition_name(analysis, variant), ContentFile(data))
            )
        with transaction.atomic():
            analysis.save()
            transaction.on_commit(lambda: metrics.count_analysis(analysis.kind, analysis.status))
            if enqueue:
                analysis_id = analysis.pk
                transaction.on_commit(lambda: enqueue_analysis(analysis_id))
    except media.StorageUnavailable:
        media.delete_files(written)
        raise media.MediaRejected(
            "The file could not be stored just now. Please try again in a minute.", 503
        ) from None
    except BaseException:
        media.delete_files(written)
        raise
    logger.info(
        "analysis %s created (%s, %s bytes)", analysis.pk, analysis.kind, size,
        extra={"analysis": analysis.pk, "kind": analysis.kind},
    )  # fmt: skip
    return analysis


# --- run -----------------------------------------------------------------------------------


def _largest_face(faces: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The headline face: the largest box, ties broken by confidence; faces too small to judge
    never make the headline (None when every face is)."""
    judged = [f for f in faces if not f.get("too_small")]
    if not judged:
        return None
    return max(
        judged, key=lambda f: (f["box"][2] * f["box"][3], f.get("confidence") or 0.0)
    )


def _read_media(analysis: Analysis) -> bytes:
    from recognition.inference.errors import InvalidMedia

    if not analysis.media:
        raise InvalidMedia("The uploaded file is no longer available.")
    try:
        return media.read_bytes(analysis.media.name)
    except media.StoredFileMissing:
        raise InvalidMedia("The uploaded file is no longer available.") from None
    # media.StorageUnavailable (a ConnectionError) goes up: the task retries it later.


def analyse_image(analysis: Analysis) -> Outcome:
    """Faces in a photo. Pillow decodes (HEIC, GIF, EXIF rotation) so boxes match the upright
    image every page shows; the face core gets a BGR array."""
    import numpy as np
    from PIL import Image, ImageOps

    from recognition.inference import faces
    from recognition.inference.errors import InvalidMedia

    data = _read_media(analysis)
    t0 = time.perf_counter()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = media.to_rgb(ImageOps.exif_transpose(image))
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        Image.DecompressionBombError,
    ) as exc:
        raise InvalidMedia("The image is damaged and cannot be read.") from exc
    bgr = np.ascontiguousarray(np.asarray(upright)[:, :, ::-1])
    decode_ms = (time.perf_counter() - t0) * 1000
    result = faces.analyze_image(bgr, decode_ms=decode_ms)
    face_list = result.get("faces") or []
    top = _largest_face(face_list)
    return Outcome(
        result=result,
        emotion=(top or {}).get("emotion") or "",
        confidence=(top or {}).get("confidence"),
        face_count=len(face_list),
        models_used={"face": result.get("model", {})},
        timings={k: float(v) for k, v in (result.get("timings") or {}).items()},
    )


def analyse_audio(analysis: Analysis) -> Outcome:
    """Emotion in a voice recording (overall and per window)."""
    from recognition.inference import voice

    data = _read_media(analysis)
    t0 = time.perf_counter()
    result = voice.analyze_audio(data, max_seconds=float(settings.MAX_AUDIO_SECONDS))
    elapsed = (time.perf_counter() - t0) * 1000
    timings = {k: float(v) for k, v in (result.get("timings") or {}).items()}
    timings.setdefault("analyse_ms", round(elapsed, 1))
    return Outcome(
        result=result,
        emotion=result.get("emotion") or "",
        confidence=result.get("confidence"),
        face_count=0,
        models_used={"voice": result.get("model", {})},
        timings=timings,
    )


def analyse_video(analysis: Analysis) -> Outcome:
    """Faces tracked over time, voice on the sound track, both fused (``inference.video``);
    progress is stored and pushed as the frames are decoded. The headline is the fused emotion."""
    from recognition.inference import video

    data = _read_media(analysis)
    reported = [analysis.progress or 0]

    def progress(fraction: float) -> None:
        percent = 10 + int(85 * fraction)  # run_analysis starts at 10; done sets 100
        if percent - reported[0] >= PROGRESS_STEP:
            reported[0] = percent
            report_progress(analysis_id=analysis.pk, progress=percent)

    result = video.analyze_video(
        data,
        sample_fps=float(settings.VIDEO_SAMPLE_FPS),
        max_seconds=float(settings.MAX_VIDEO_SECONDS),
        max_pixels=int(settings.MAX_VIDEO_PIXELS),
        progress=progress,
    )
    fused = result.get("fused") or {}
    return Outcome(
        result=result,
        emotion=fused.get("emotion") or "",
        confidence=fused.get("confidence"),
        face_count=len(result.get("faces") or []),
        models_used=result.get("model") or {},
        timings={k: float(v) for k, v in (result.get("timings") or {}).items()},
    )


def probe_video(fh: Any) -> None:
    """Refuse (400) a video none of whose first pictures decode, so a damaged file is told at
    upload rather than failing later in the worker."""
    from recognition.inference import video
    from recognition.inference.errors import InvalidMedia

    fh.seek(0)
    try:
        video.probe(fh)
    except InvalidMedia as exc:
        raise media.MediaRejected(str(exc), 400) from None
    finally:
        fh.seek(0)


PROGRESS_STEP = 5  # percent between progress pushes of a long analysis


def report_progress(*, analysis_id: int, progress: int) -> None:
    """Store and push a running analysis's progress (0-99; 100 is set when it ends)."""
    _set_status(analysis_id, progress=max(0, min(99, int(progress))))


register_analyser(media.IMAGE, analyse_image)
register_analyser(media.AUDIO, analyse_audio)
register_analyser(media.VIDEO, analyse_video)
UPLOAD_PROBES[media.VIDEO] = probe_video


def _set_status(analysis_id: int, **fields: Any) -> Analysis | None:
    """Update some columns of one analysis and push the change; None if it was deleted."""
    with transaction.atomic():
        analysis = Analysis.objects.select_for_update().filter(pk=analysis_id).first()
        if analysis is None:
            return None
        for name, value in fields.items():
            setattr(analysis, name, value)
        analysis.save(update_fields=list(fields))
    if "status" in fields:
        transaction.on_commit(lambda: metrics.count_analysis(analysis.kind, analysis.status))
    transaction.on_commit(lambda: notify(analysis))
    return analysis


def mark_failed(*, analysis_id: int, message: str) -> Analysis | None:
    """Store a failure with a message for people (used by the task on time limits/retries)."""
    return _set_status(
        analysis_id,
        status=Analysis.Status.FAILED,
        error=message[:2000],
        progress=100,
        finished=timezone.now(),
    )


def _soft_limit_in_chain(exc: BaseException) -> BaseException | None:
    """The SoftTimeLimitExceeded behind ``exc`` (its cause/context chain), if any: libraries that
    re-raise errors as their own types (image decoders, TensorFlow) must not hide a time limit."""
    from celery.exceptions import SoftTimeLimitExceeded

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SoftTimeLimitExceeded):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def run_analysis(*, analysis_id: int) -> Analysis:
    """Analyse one stored upload; idempotent (a done analysis is returned as is, a rerun
    replaces any earlier attempt). Input errors end as ``failed`` with a readable message;
    transient infrastructure errors (database, broker) propagate so the task can retry."""
    from celery.exceptions import SoftTimeLimitExceeded
    from django.db import DatabaseError

    from recognition.inference.errors import InvalidMedia
    from recognition.inference.registry import ModelUnavailable

    analysis = Analysis.objects.get(pk=analysis_id)
    if analysis.status == Analysis.Status.DONE:
        return analysis
    analyser = ANALYSERS.get(analysis.kind)
    if analyser is None:
        return (
            mark_failed(
                analysis_id=analysis_id,
                message=f"{analysis.kind.capitalize()} is not supported yet.",
            )
            or analysis
        )

    running = _set_status(
        analysis_id,
        status=Analysis.Status.RUNNING,
        started=timezone.now(),
        progress=10,
        error="",
        attempts=analysis.attempts + 1,
    )
    if running is None:
        raise Analysis.DoesNotExist(f"analysis {analysis_id} was deleted")
    t0 = time.perf_counter()
    try:
        outcome = analyser(running)
    except InvalidMedia as exc:
        limit = _soft_limit_in_chain(exc)
        if limit is not None:
            raise limit from exc
        return (
            mark_failed(
                analysis_id=analysis_id,
                message=str(exc) or "The file could not be analysed.",
            )
            or running
        )
    except ModelUnavailable:
        logger.exception("model unavailable for analysis %s", analysis_id)
        return (
            mark_failed(
                analysis_id=analysis_id,
                message="The recognition model is not available right now. Please try again later.",
            )
            or running
        )
    except (DatabaseError, ConnectionError, SoftTimeLimitExceeded):
        raise  # transient (the task retries) or a time limit (the task records it)
    except MemoryError:
        return (
            mark_failed(
                analysis_id=analysis_id, message="The file is too large to analyse."
            )
            or running
        )
    except Exception as exc:
        limit = _soft_limit_in_chain(exc)
        if limit is not None:
            raise limit from exc  # the time limit fired inside code that wrapped it: still a time limit
        logger.exception("analysis %s crashed", analysis_id)
        return (
            mark_failed(
                analysis_id=analysis_id,
                message="Something went wrong while analysing this file.",
            )
            or running
        )
    timings = dict(outcome.timings)
    timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    done = _set_status(
        analysis_id,
        status=Analysis.Status.DONE,
        result=outcome.result,
        emotion=outcome.emotion or "",
        confidence=outcome.confidence,
        face_count=outcome.face_count,
        models_used=outcome.models_used,
        timings=timings,
        error="",
        progress=100,
        finished=timezone.now(),
    )
    if done is None:
        raise Analysis.DoesNotExist(f"analysis {analysis_id} was deleted while running")
    return done


def retry_analysis(*, owner: Any, analysis_id: int) -> Analysis:
    """Queue a failed analysis again (e.g. after a model outage); other states are left as
    they are. 404 for someone else's analysis."""
    analysis = selectors.get_analysis_for(owner, analysis_id)
    if analysis.status != Analysis.Status.FAILED:
        return analysis
    with transaction.atomic():
        retried = _set_status(
            analysis.pk,
            status=Analysis.Status.QUEUED,
            error="",
            progress=0,
            finished=None,
        )
        transaction.on_commit(lambda: enqueue_analysis(analysis.pk))
    return retried or analysis


# --- live sessions -------------------------------------------------------------------------

_SUMMARY_NUMBERS = ("duration", "frames", "frames_with_faces", "dropped", "faces_max")


def save_live_session(*, owner: Any, summary: dict[str, Any]) -> Analysis:
    """Store a finished live session as ``Analysis(kind="live", status="done")`` owned by ``owner``:
    the one way live sessions are saved, analysed on the server (the live socket's recorder) or on
    the person's device (``save_device_session``).

    ``summary`` is ``live_sessions.SessionRecorder.summary()``; the headline emotion is the most
    frequent face label and its confidence the mean probability of that label. Raises ValueError
    for a summary that is not shaped like one (it is never partially saved). Announced on the
    owner's group (``analysis.update``) like every other analysis."""
    for key in _SUMMARY_NUMBERS:
        value = summary.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"live summary field {key!r} must be a non-negative number")
    if not isinstance(summary.get("distribution"), dict) or not isinstance(summary.get("timeline"), list):
        raise ValueError("live summary needs a distribution and a timeline")  # noqa: TRY004
    result = {k: v for k, v in summary.items() if k not in ("models", "server_ms", "started")}
    emotion = summary.get("emotion") or ""
    confidence = summary.get("confidence")
    finished = timezone.now()
    try:
        started = datetime.fromisoformat(summary["started"])
    except (KeyError, TypeError, ValueError):
        started = finished - timedelta(seconds=float(summary["duration"]))
    with transaction.atomic():
        analysis = Analysis.objects.create(
            owner=owner,
            kind=Analysis.Kind.LIVE,
            status=Analysis.Status.DONE,
            original_name=f"Live session {timezone.localtime(started):%Y-%m-%d %H:%M}",
            progress=100,
            emotion=emotion if isinstance(emotion, str) else "",
            confidence=float(confidence) if isinstance(confidence, (int, float)) else None,
            face_count=int(summary["faces_max"]),
            result=result,
            models_used=summary.get("models") or {},
            timings={"server_ms": summary.get("server_ms") or {}, "duration_s": summary["duration"]},
            started=started,
            finished=finished,
        )
    metrics.count_analysis(Analysis.Kind.LIVE, Analysis.Status.DONE)
    notify(analysis)  # open history/dashboard pages update like for uploads
    return analysis


class DeviceSessionRejected(ValueError):
    """An on-device session that cannot be saved as sent; ``field`` names the part at fault."""

    def __init__(self, message: str, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.field = field


# Caps on a session analysed on the device (the page keeps under them: at most 5 samples a
# second, halved when full). A request body at the caps is about 2 MB.
DEVICE_MAX_SAMPLES = 7200
DEVICE_MAX_FACES_PER_SAMPLE = 16
DEVICE_MAX_FACES = 20000
DEVICE_MAX_SECONDS = 4 * 3600
DEVICE_SUM_TOLERANCE = 0.01  # the probabilities of a face sum to 1 within this
_DEVICE_KEYS = {"model", "started", "duration", "samples"}
_SAMPLE_KEYS = {"t", "faces"}
_FACE_KEYS = {"box", "probabilities", "too_small"}


def _number(value: Any, where: str, *, low: float = 0.0, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DeviceSessionRejected(f"{where} must be a finite number.", where.split("[")[0].split(".")[0])
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise DeviceSessionRejected(f"{where} must be {bound}.", where.split("[")[0].split(".")[0])
    return float(value)


def served_live_model() -> dict[str, Any]:
    """The served live face model's card: name, version and its classes (ModelUnavailable when
    the registry names none). On-device sessions must have been analysed by it."""
    from recognition.inference import faces, registry

    name = faces.live_model_name() or registry.served_name("face")
    card = registry.load_card(name)
    return {"name": card["name"], "version": str(card["version"]), "classes": list(card["classes"])}


def device_summary(data: Any, *, served: dict[str, Any]) -> dict[str, Any]:
    """A session analysed on the person's device, checked field by field (DeviceSessionRejected
    with the first fault), replayed into the recorder a server session uses: the summary
    ``save_live_session`` stores. ``served``: ``served_live_model()``."""
    from recognition.analyses.live_sessions import SessionRecorder

    if not isinstance(data, dict):
        raise DeviceSessionRejected("The body must be a JSON object.")
    unknown = sorted(set(data) - _DEVICE_KEYS)
    if unknown:
        raise DeviceSessionRejected(f"Unknown field: {unknown[0]}.", unknown[0])
    model = data.get("model")
    if not isinstance(model, dict) or set(model) != {"name", "version"}:
        raise DeviceSessionRejected("model must be {name, version}.", "model")
    if model["name"] != served["name"] or model["version"] != served["version"]:
        raise DeviceSessionRejected(
            f"The session was analysed by {str(model['name'])[:60]} {str(model['version'])[:30]}; "
            f"this site serves {served['name']} {served['version']}. Reload the live page.", "model")
    duration = _number(data.get("duration"), "duration", high=DEVICE_MAX_SECONDS)
    started = data.get("started")
    started_at = None
    if started is not None:
        try:
            started_at = datetime.fromisoformat(started) if isinstance(started, str) and len(started) <= 64 else None
        except ValueError:
            started_at = None
        if started_at is None or started_at.tzinfo is None:
            raise DeviceSessionRejected("started must be an ISO 8601 time with its offset.", "started")
        if started_at > timezone.now() + timedelta(minutes=5):
            raise DeviceSessionRejected("started is in the future.", "started")
    samples = data.get("samples")
    if not isinstance(samples, list):
        raise DeviceSessionRejected("samples must be a list.", "samples")
    if len(samples) > DEVICE_MAX_SAMPLES:
        raise DeviceSessionRejected(f"At most {DEVICE_MAX_SAMPLES} samples.", "samples")
    classes = served["classes"]
    recorder = SessionRecorder()
    if started_at is not None:
        recorder.started_at = started_at
    recorder.models["face"] = {"name": served["name"], "version": served["version"]}
    last = 0.0
    total_faces = 0
    for i, sample in enumerate(samples):
        where = f"samples[{i}]"
        if not isinstance(sample, dict) or set(sample) - _SAMPLE_KEYS or "t" not in sample:
            raise DeviceSessionRejected(f"{where} must be {{t, faces}}.", "samples")
        t = _number(sample["t"], f"{where}.t", high=duration)
        if t < last:
            raise DeviceSessionRejected(f"{where}.t goes back in time.", "samples")
        last = t
        found = sample.get("faces", [])
        if not isinstance(found, list) or len(found) > DEVICE_MAX_FACES_PER_SAMPLE:
            raise DeviceSessionRejected(f"{where}.faces must be a list of at most {DEVICE_MAX_FACES_PER_SAMPLE}.", "samples")
        total_faces += len(found)
        if total_faces > DEVICE_MAX_FACES:
            raise DeviceSessionRejected(f"At most {DEVICE_MAX_FACES} faces in all.", "samples")
        faces_seen = []
        for j, face in enumerate(found):
            at = f"{where}.faces[{j}]"
            if not isinstance(face, dict) or set(face) - _FACE_KEYS or "probabilities" not in face:
                raise DeviceSessionRejected(f"{at} must be {{probabilities, box?, too_small?}}.", "samples")
            box = face.get("box", [0, 0, 0, 0])
            if not isinstance(box, list) or len(box) != 4:
                raise DeviceSessionRejected(f"{at}.box must be four numbers.", "samples")
            box = [_number(v, f"{at}.box", high=100_000) for v in box]
            small = face.get("too_small", False)
            if not isinstance(small, bool):
                raise DeviceSessionRejected(f"{at}.too_small must be true or false.", "samples")
            probs = face["probabilities"]
            if not isinstance(probs, list) or len(probs) != len(classes):
                raise DeviceSessionRejected(f"{at}.probabilities must be {len(classes)} numbers ({', '.join(classes)}).", "samples")
            probs = [_number(p, f"{at}.probabilities", high=1.0) for p in probs]
            if abs(sum(probs) - 1.0) > DEVICE_SUM_TOLERANCE:
                raise DeviceSessionRejected(f"{at}.probabilities must sum to 1.", "samples")
            best = max(range(len(classes)), key=probs.__getitem__)
            faces_seen.append({"box": box, "too_small": small, "emotion": classes[best], "confidence": probs[best],
                               "probabilities": dict(zip(classes, probs, strict=True))})
        recorder.add_frame({"faces": faces_seen}, at=t)
    summary = recorder.summary()
    summary["duration"] = round(duration, 2)
    if started_at is None:
        summary.pop("started")  # save_live_session counts back from now
    summary.pop("server_ms")
    summary["analysed_on"] = "device"
    return summary


def save_device_session(*, owner: Any, data: Any) -> Analysis:
    """Save a live session analysed on the person's device (numbers only: times, boxes,
    probabilities; see ``device_summary``) exactly as a server session is saved. Raises
    DeviceSessionRejected for anything not shaped as documented (docs/api.md); nothing is saved
    then. ModelUnavailable when this site serves no live face model."""
    summary = device_summary(data, served=served_live_model())
    return save_live_session(owner=owner, summary=summary)


# --- delete --------------------------------------------------------------------------------


def privacy_record(owner: Any, kind: str, **fields: Any) -> None:
    """A deletion goes into the owner's account log (privacy: listed for 90 days)."""
    from recognition.accounts.services import record

    record(owner, kind, **fields)


def delete_analysis(*, owner: Any, analysis_id: int) -> None:
    """Delete one of the owner's analyses and its files (after commit); 404 for others'."""
    analysis = selectors.get_analysis_for(owner, analysis_id)
    names = media.stored_names(analysis)
    with transaction.atomic():
        analysis.delete()
        privacy_record(owner, "deleted", detail=f"{analysis.get_kind_display()} #{analysis_id}")
        transaction.on_commit(lambda: media.delete_files(names))


def delete_user_data(*, owner: Any) -> int:
    """Delete every analysis of the owner and their whole media folder (every stored file under
    ``users/<id>/``, through the storage API, so in a bucket too); returns how many."""
    with transaction.atomic():
        names = [
            n
            for a in Analysis.objects.filter(owner=owner)
            for n in media.stored_names(a)
        ]
        _, per_model = Analysis.objects.filter(owner=owner).delete()
        count = per_model.get(Analysis._meta.label, 0)
        privacy_record(owner, "deleted_all", count=count)
        folder = media.user_dir(owner.pk)

        def remove() -> None:
            media.delete_files(names)
            try:  # and anything else under the owner's folder (files no record names any more)
                media.delete_folder(folder)
            except media.StorageUnavailable:
                logger.warning("could not list media of user %s; its known files were deleted", owner.pk)

        transaction.on_commit(remove)
    return count


class AccountDeletionRefused(Exception):
    """The password (or the second factor) given to delete an account was not right."""


def delete_account(*, owner: Any, password: str, code: str = "", request: Any = None) -> int:
    """Delete the owner's account for good: every analysis and stored file (as
    ``delete_user_data``: the whole ``users/<id>/`` folder, in a bucket too), and with the user
    row its corrections, settings, tokens, two-factor devices and account log. The password, and
    the second factor when it is on, must be given again (``AccountDeletionRefused``). Returns
    how many analyses went."""
    from recognition.accounts.services import has_two_factor, verify_second_factor

    if not password or not owner.check_password(password):
        raise AccountDeletionRefused("The password is not correct.")
    if has_two_factor(owner) and verify_second_factor(user=owner, code=code, request=request) is None:
        raise AccountDeletionRefused("The code from your authenticator app (or a recovery code) is not correct.")
    user_id = owner.pk
    with transaction.atomic():
        count = delete_user_data(owner=owner)  # its files go once this commits
        owner.delete()
    logger.info("account %s deleted with %d analyses", user_id, count)
    return count
