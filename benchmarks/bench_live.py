"""Live socket speed: round trip and sustained frames per second through daphne on localhost.

    .venv/bin/python -m benchmarks.bench_live [--seconds 10] [--clients 1,4] [--scenes selfie,group]

Starts the site under daphne (SQLite in a temporary folder, the served models, the settings'
LIVE_* values unless given: --threads, --infer-width), signs a user in, and streams 640x480 JPEGs
with faces over /ws/live/ from 1 and 4 concurrent clients, each keeping one frame in flight.
Scenes: ``selfie`` (one close face cut from tests/media/test_image.jpg, the webcam case) and
``group`` (four faces from tests/media/12_angry_men.jpg, the window benchmarks/bench_face uses),
each 8 frames with a little camera shake. Prints, all from this run on this machine:

- per scene and client count: round trip p50/p95 (send -> reply at the client), sustained fps per
  client and in total, faces found, and the server's own split (medians): decode, detect,
  classify, queue (waiting for a pool thread), server (receive -> reply);
- baselines: the same frames through ``pipeline.analyze_frame`` in-process (no socket: the floor),
  and a frame-sized message web -> worker -> web through the Redis channel layer (what a
  dedicated inference worker would add on top of the same inference).

Target (issue 8): one client p95 <= 40 ms and >= 25 fps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests import livesite

MEDIA = REPO / "tests" / "media"
HEADER = struct.Struct(">BI")
# (x, y, w, h) windows of the source photos, 4:3, scaled to 640x480.
SCENES = {
    "selfie": (MEDIA / "test_image.jpg", (500, 620, 1200, 900)),
    "group": (MEDIA / "12_angry_men.jpg", (0, 60, 580, 435)),
}


def scene_frames(name: str, count: int = 8) -> list[bytes]:
    """640x480 JPEGs (quality 80) of one scene, each shifted a few pixels like a hand-held camera."""
    path, (x, y, w, h) = SCENES[name]
    frames = []
    with Image.open(path) as photo:
        photo = photo.convert("RGB")
        rng = np.random.default_rng(0)
        for _ in range(count):
            dx, dy = (int(v) for v in rng.integers(-12, 13, size=2))
            box = (
                max(0, x + dx),
                max(0, y + dy),
                max(0, x + dx) + w,
                max(0, y + dy) + h,
            )
            out = io.BytesIO()
            photo.crop(box).resize((640, 480), Image.BILINEAR).save(
                out, "JPEG", quality=80
            )
            frames.append(out.getvalue())
    return frames


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- the site under daphne (tests/livesite.py, shared with the browser tests) ----------------


class Site(livesite.Site):
    """The production-like settings (DEBUG off) in a temporary folder, removed on stop."""

    def __init__(self, env_overrides: dict[str, str]) -> None:
        super().__init__(
            Path(tempfile.mkdtemp(prefix="bench-live-")),
            DEBUG="false",
            HTTPS="false",
            LOG_LEVEL="WARNING",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SECRET_KEY="bench-live-" + "x" * 40,
            **env_overrides,
        )

    def session_cookie(self) -> str:
        code = (
            "from django.contrib.auth import get_user_model; from django.test import Client; "
            "u = get_user_model().objects.create_user('bench', password='bench-pass-9876'); "
            "c = Client(); c.force_login(u); print('SESSION=' + c.cookies['sessionid'].value)"
        )
        out = self.manage("shell", "-c", code)
        return next(line for line in out.splitlines() if line.startswith("SESSION="))[8:]

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- clients -------------------------------------------------------------------------------


async def run_client(
    url: str, origin: str, cookie: str, frames: list[bytes], start: float, end: float
) -> dict:
    """One client, one frame in flight: send, wait for the answer, send the next."""
    from websockets.asyncio.client import connect

    stats: dict = {
        "rtt": [],
        "server": [],
        "decode": [],
        "detect": [],
        "classify": [],
        "queue": [],
        "faces": [],
    }
    stats["errors"] = 0
    async with connect(
        url,
        origin=origin,
        additional_headers={"Cookie": f"sessionid={cookie}"},
        compression=None,
        max_size=2**22,
    ) as ws:
        await ws.send(json.dumps({"type": "hello"}))
        assert json.loads(await ws.recv())["type"] == "ready"
        seq = 0
        while True:
            seq += 1
            sent = time.perf_counter()
            if sent >= end:
                break
            await ws.send(HEADER.pack(1, seq) + frames[seq % len(frames)])
            reply = json.loads(await ws.recv())
            got = time.perf_counter()
            if sent < start:
                continue  # warm-up
            if reply.get("type") != "result":
                stats["errors"] += 1
                continue
            stats["rtt"].append((got - sent) * 1000)
            stats["server"].append(reply["server_ms"])
            timings = reply["timings"]
            for key in ("decode", "detect", "classify", "queue"):
                stats[key].append(timings[f"{key}_ms"])
            stats["faces"].append(len(reply["faces"]))
    return stats


async def scenario(
    site: Site,
    cookie: str,
    frames: list[bytes],
    clients: int,
    seconds: float,
    warmup: float,
) -> dict:
    url = f"ws://127.0.0.1:{site.port}/ws/live/"
    origin = f"http://127.0.0.1:{site.port}"
    start = time.perf_counter() + warmup
    end = start + seconds
    results = await asyncio.gather(
        *(run_client(url, origin, cookie, frames, start, end) for _ in range(clients))
    )
    merged = {
        key: [v for r in results for v in r[key]]
        for key in results[0]
        if key != "errors"
    }
    merged["errors"] = sum(r["errors"] for r in results)
    merged["fps_client"] = [len(r["rtt"]) / seconds for r in results]
    return merged


# --- baselines -----------------------------------------------------------------------------


def in_process(frames: list[bytes], repeats: int) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emotionsite.settings")
    django.setup()
    from recognition.live import pipeline, protocol

    limits = protocol.LiveLimits.from_settings()
    for payload in frames[:3]:
        pipeline.analyze_frame(payload, limits)
    times, parts = [], {"decode": [], "detect": [], "classify": []}
    cpu0 = time.process_time()
    for i in range(repeats):
        t0 = time.perf_counter()
        reply = pipeline.analyze_frame(frames[i % len(frames)], limits)
        times.append((time.perf_counter() - t0) * 1000)
        for key, values in parts.items():
            values.append(reply["timings"][f"{key}_ms"])
        faces = len(reply["faces"])
    cpu_ms = (
        (time.process_time() - cpu0) * 1000 / repeats
    )  # all threads: what a frame costs the CPUs
    return {"times": times, "faces": faces, "cpu_ms": cpu_ms, **parts}


async def redis_hop(url: str, size: int, repeats: int) -> list[float] | None:
    """web -> worker -> web with a ``size``-byte frame through channels_redis: the transport a
    dedicated inference worker would add (the inference itself would cost the same)."""
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(
        hosts=[{"address": url, "socket_timeout": 15}],
        prefix=f"bench-live-{os.getpid()}",
    )
    worker, web = await layer.new_channel(), await layer.new_channel()
    payload = os.urandom(size)

    async def serve() -> None:
        while True:
            message = await layer.receive(worker)
            await layer.send(
                web,
                {
                    "type": "result",
                    "seq": message["seq"],
                    "faces": [{"box": [1, 2, 3, 4]}],
                },
            )

    server = asyncio.create_task(serve())
    times = []
    for seq in range(repeats + 10):
        t0 = time.perf_counter()
        await layer.send(worker, {"type": "frame", "seq": seq, "data": payload})
        await layer.receive(web)
        if seq >= 10:
            times.append((time.perf_counter() - t0) * 1000)
    server.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await server
    await layer.flush()
    await layer.close_pools()
    return times


def served_face_model() -> str:
    try:
        registry = json.loads((REPO / "models" / "registry.json").read_text())
        card = json.loads((REPO / "models" / f"{registry.get('face_live') or registry['face']}.json").read_text())  # live's own model when one is named
        return f"{card['name']} {card.get('version', '?')} ({card.get('parameters', '?')} parameters)"
    except (OSError, ValueError, KeyError):
        return "unknown"


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per scenario"
    )
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", default="1,4")
    parser.add_argument("--scenes", default="selfie,group")
    parser.add_argument(
        "--threads", type=int, help="LIVE_INFERENCE_THREADS for the server"
    )
    parser.add_argument(
        "--infer-width", type=int, help="LIVE_INFER_MAX_WIDTH for the server"
    )
    parser.add_argument(
        "--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    )
    args = parser.parse_args(argv)

    overrides = {
        "LIVE_MAX_MESSAGES_PER_SECOND": "1000"
    }  # measure speed, not the abuse cap
    if args.threads:
        overrides["LIVE_INFERENCE_THREADS"] = str(args.threads)
    if args.infer_width:
        overrides["LIVE_INFER_MAX_WIDTH"] = str(args.infer_width)
    scenes = {name: scene_frames(name) for name in args.scenes.split(",")}
    counts = [int(c) for c in args.clients.split(",")]

    site = Site(overrides)
    rows = []
    try:
        site.manage("migrate", "--noinput")
        cookie = site.session_cookie()
        site.start()
        for name, frames in scenes.items():
            # First connection pays for loading TensorFlow and the models: not measured.
            asyncio.run(scenario(site, cookie, frames, 1, 1.0, 8.0))
            for clients in counts:
                rows.append(
                    (
                        name,
                        clients,
                        asyncio.run(
                            scenario(
                                site, cookie, frames, clients, args.seconds, args.warmup
                            )
                        ),
                    )
                )
    finally:
        site.stop()

    print(
        f"\nLoad average {os.getloadavg()[0]:.1f} (other processes share these CPUs). "
        f"Live socket, daphne on 127.0.0.1, {os.cpu_count()} CPUs, 640x480 JPEG q80, one frame in flight per client,"
    )
    print(
        f"{args.seconds:g} s measured after {args.warmup:g} s warm-up; server settings {overrides}; "
        f"face model {served_face_model()}"
    )
    head = (
        f"{'scene':<8}{'clients':>8}{'frames':>8}{'p50 ms':>8}{'p95 ms':>8}{'fps/cl':>8}{'fps all':>8}"
        f"{'faces':>6}{'decode':>8}{'detect':>8}{'classif':>8}{'queue':>7}{'server':>8}{'errors':>7}"
    )
    print(head)
    print("-" * len(head))
    for name, clients, s in rows:
        print(
            f"{name:<8}{clients:>8}{len(s['rtt']):>8}{pct(s['rtt'], 50):>8.1f}{pct(s['rtt'], 95):>8.1f}"
            f"{med(s['fps_client']):>8.1f}{sum(s['fps_client']):>8.1f}{med(s['faces']):>6.0f}"
            f"{med(s['decode']):>8.1f}{med(s['detect']):>8.1f}{med(s['classify']):>8.1f}{med(s['queue']):>7.1f}"
            f"{med(s['server']):>8.1f}{s['errors']:>7}"
        )

    print("\nBaselines (same frames, same run)")
    for name, frames in scenes.items():
        base = in_process(frames, 100)
        print(
            f"  in-process pipeline.analyze_frame, {name:<6}: p50 {pct(base['times'], 50):6.1f} ms  "
            f"p95 {pct(base['times'], 95):6.1f} ms  (decode {med(base['decode']):.1f}, detect {med(base['detect']):.1f}, "
            f"classify {med(base['classify']):.1f}; {base['faces']} faces; CPU {base['cpu_ms']:.1f} ms/frame)"
        )
    size = int(statistics.mean(len(f) for f in next(iter(scenes.values()))))
    try:
        hop = asyncio.run(redis_hop(args.redis, size, 200))
    except Exception as exc:  # noqa: BLE001 - no Redis here: report it, keep the rest
        print(f"  (Redis hop skipped: {exc})")
        hop = None
    if hop:
        print(
            f"  Redis channel-layer hop web->worker->web, {size // 1024} KB frame: "
            f"p50 {pct(hop, 50):.1f} ms  p95 {pct(hop, 95):.1f} ms (added on top of inference by a dedicated worker)"
        )


if __name__ == "__main__":
    main()
