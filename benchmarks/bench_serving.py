"""Serving speed before and after issue 29, in one run: the same frames, photo, video and jobs
through the pipeline as it served before (TensorFlow, YuNet in OpenCV's DNN module, the 6-view
face ensemble for photos and video, the 2-view ``face_live`` for live, a tilted face's landmarks
refined on every frame, one part of a request after the other) and as it serves now (ONNX
Runtime for the networks and YuNet, a request's independent parts on ``INFERENCE_PARALLEL``
threads, the models ``models/registry.json`` names, faces tracked). Both look at the same turned detector views.

    .venv/bin/python -m benchmarks.bench_serving [--frames 100] [--seconds 6] [--skip-video]

Rows (milliseconds unless named; p50/p95 over ``--frames`` frames after a warm-up):
- live, one client: a 640x480 frame decoded and analysed (``pipeline.decode_frame`` then
  ``faces.analyze_image`` with the session's tracks, as ``pipeline.analyze_frame`` does), for the
  4-face grid (benchmarks/bench_face) and the selfie (one tilted face, benchmarks/bench_live);
- live, 4 clients: four sessions, each keeping one frame in flight, sharing a pool of
  ``LIVE_INFERENCE_THREADS`` (2) threads like the live socket's; frames per second per client;
- photo: ``faces.analyze_image`` of the 4-face 640x480 photo with the served face model;
- video: ``video.analyze_video`` of the six-face panning clip (tests/video_media.py, 640x480,
  speech sound track) at the served sampling rate; seconds of video per second of work;
- first job after ready: a fresh process warms up as a worker does, then runs a photo and a
  speech clip twice each; the first and second times and their ratio (target <= 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emotionsite.settings")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-serving-"))
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

import django

django.setup()

import cv2
import numpy as np

from benchmarks._common import percentile
from benchmarks.bench_engines import cpu_flags
from benchmarks.bench_face import photo_640x480
from benchmarks.bench_live import scene_frames
from recognition.inference import faces, registry, tracking, video
from recognition.live import pipeline, protocol

REPO = Path(__file__).resolve().parents[1]
BEFORE = {"engine": "keras", "detector": "opencv", "parallel": "1", "face": "face_ensemble", "live": "face_live", "tracking": False}


def after_config() -> dict:
    return {"engine": "onnx", "detector": "onnx", "parallel": os.environ.get("INFERENCE_PARALLEL", "2"), "face": registry.served_name("face"), "live": faces.live_model_name() or registry.served_name("face"), "tracking": True}


def use(config: dict) -> None:
    os.environ["INFERENCE_ENGINE"] = config["engine"]
    os.environ["DETECTOR_ENGINE"] = config["detector"]
    os.environ["INFERENCE_PARALLEL"] = config["parallel"]
    registry.clear_cache()


def new_tracks(config: dict) -> tracking.FaceTracks:
    """A session's tracks; "before" never reuses a refinement (every frame refined afresh)."""
    return tracking.FaceTracks(memory=tracking.AlignmentMemory(reuse_max_degrees=-1.0 if not config["tracking"] else tracking.REUSE_MAX_DEGREES))


def grid_frames(count: int = 8) -> list[bytes]:
    """The 4-face grid as 640x480 JPEGs, shifted a few pixels per frame like a webcam."""
    photo, rng, frames = photo_640x480(), np.random.default_rng(1), []
    for _ in range(count):
        dx, dy = rng.integers(-4, 5, 2)
        moved = cv2.warpAffine(photo, np.float32([[1, 0, dx], [0, 1, dy]]), (640, 480), borderMode=cv2.BORDER_REPLICATE)
        frames.append(cv2.imencode(".jpg", moved, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    return frames


def live_frame(payload: bytes, limits: protocol.LiveLimits, model: str, tracks: tracking.FaceTracks) -> dict:
    image, _, _, _ = pipeline.decode_frame(payload, limits)
    return faces.analyze_image(image, model=model, tracks=tracks)


def one_client(config: dict, frames: list[bytes], n: int) -> tuple[float, float, int]:
    limits, tracks = protocol.LiveLimits.from_settings(), new_tracks(config)
    for payload in frames[:3]:
        live_frame(payload, limits, config["live"], tracks)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        result = live_frame(frames[i % len(frames)], limits, config["live"], tracks)
        times.append((time.perf_counter() - t0) * 1000)
    return percentile(times, 0.5), percentile(times, 0.95), len(result["faces"])


def four_clients(config: dict, frames: list[bytes], seconds: float) -> list[float]:
    """Frames per second of each of 4 sessions sharing a 2-thread pool, each with one frame in flight."""
    limits = protocol.LiveLimits.from_settings()
    pool = ThreadPoolExecutor(max_workers=int(os.environ.get("LIVE_INFERENCE_THREADS", "2")))
    counts = [0] * 4
    stop = time.perf_counter() + seconds

    def client(k: int) -> None:
        tracks, i = new_tracks(config), k
        while time.perf_counter() < stop:
            pool.submit(live_frame, frames[i % len(frames)], limits, config["live"], tracks).result()
            counts[k] += 1
            i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.shutdown()
    return [c / seconds for c in counts]


def photo_ms(config: dict, n: int) -> float:
    photo = photo_640x480()
    for _ in range(3):
        faces.analyze_image(photo, model=config["face"])
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        faces.analyze_image(photo, model=config["face"])
        times.append((time.perf_counter() - t0) * 1000)
    return percentile(times, 0.5)


def video_speed(config: dict, clip: bytes, duration: float) -> float:
    """Seconds of video analysed per second of work (above 1: faster than real time)."""
    sample_fps = float(getattr(django.conf.settings, "VIDEO_SAMPLE_FPS", 4.0))
    tracks = new_tracks(config)
    tracks.tracker = tracking.IoUTracker(max_gap=max(1, round(video.TRACK_MAX_GAP_SECONDS * sample_fps)))
    tracks.turn_every = 1  # as analyze_video's own: every sample gets every turned view
    t0 = time.perf_counter()
    video.analyze_video(clip, sample_fps=sample_fps, model=config["face"], tracks=tracks)
    return duration / (time.perf_counter() - t0)


FIRST_JOB = """
import json, os, time
import django
django.setup()
from pathlib import Path
from recognition.operations import warmup
from recognition.inference import faces, voice
media = Path("tests/media")
warmup.warm_up_models()
out = {}
photo = (media / "12_angry_men.jpg").read_bytes()
clip = (media / "speech" / "03-01-05-02-01-01-18.flac").read_bytes()
for kind, fn in (("photo", lambda: faces.analyze_image(photo)), ("speech", lambda: voice.analyze_audio(clip))):
    times = []
    for _ in range(2):
        t0 = time.perf_counter(); fn(); times.append((time.perf_counter() - t0) * 1000)
    out[kind] = times
print(json.dumps(out))
"""


def models_dir_for(config: dict) -> str:
    """A models folder (links to models/) whose registry.json serves ``config``'s face models."""
    folder = Path(tempfile.mkdtemp(prefix="bench-models-"))
    for path in (REPO / "models").iterdir():
        if path.name != "registry.json":
            (folder / path.name).symlink_to(path)
    served = json.loads((REPO / "models" / "registry.json").read_text())
    (folder / "registry.json").write_text(json.dumps({**served, "face": config["face"], "face_live": config["live"]}))
    return str(folder)


def first_jobs(config: dict) -> dict:
    env = {**os.environ, "INFERENCE_ENGINE": config["engine"], "DETECTOR_ENGINE": config["detector"], "INFERENCE_PARALLEL": config["parallel"], "DATA_DIR": tempfile.mkdtemp(), "MODELS_DIR": models_dir_for(config)}
    out = subprocess.run([sys.executable, "-c", FIRST_JOB], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=6.0, help="video length, and how long the 4 live clients stream")
    parser.add_argument("--skip-video", action="store_true")
    args = parser.parse_args(argv)
    after = after_config()
    print(f"CPU: {os.cpu_count()} cores; flags: {cpu_flags()}; load average {os.getloadavg()[0]:.1f}")
    print(f"before: {BEFORE}\nafter:  {after}\n")
    grid, selfie = grid_frames(), scene_frames("selfie")
    rows: list[tuple[str, str, str, str]] = []

    def add(label: str, before: str, after_: str, ratio: str) -> None:
        rows.append((label, before, after_, ratio))
        print(f"| {label} | {before} | {after_} | {ratio} |", flush=True)

    print("| path | before | after | after vs before |\n|---|---|---|---|")
    results = {}
    for name, config in (("before", BEFORE), ("after", after)):
        use(config)
        results[name] = {
            "grid": one_client(config, grid, args.frames),
            "selfie": one_client(config, selfie, args.frames),
            "four_grid": four_clients(config, grid, args.seconds),
            "four_selfie": four_clients(config, selfie, args.seconds),
            "photo": photo_ms(config, max(10, args.frames // 3)),
        }
    b, a = results["before"], results["after"]
    for scene in ("grid", "selfie"):
        add(f"live 1 client, {scene} ({a[scene][2]} faces): p50 / p95 ms", f"{b[scene][0]:.1f} / {b[scene][1]:.1f}", f"{a[scene][0]:.1f} / {a[scene][1]:.1f}", f"{b[scene][1] / a[scene][1]:.2f}x faster (p95)")
        key = f"four_{scene}"
        add(f"live 4 clients, {scene}: fps per client (min-max)", f"{min(b[key]):.1f}-{max(b[key]):.1f}", f"{min(a[key]):.1f}-{max(a[key]):.1f}", f"{min(a[key]) / min(b[key]):.2f}x")
    add("photo, 4 faces, in-process: median ms", f"{b['photo']:.1f}", f"{a['photo']:.1f}", f"{b['photo'] / a['photo']:.2f}x faster")
    if not args.skip_video:
        from tests.video_media import make_video

        clip = make_video(seconds=args.seconds)
        speeds = {}
        for name, config in (("before", BEFORE), ("after", after)):
            use(config)
            video_speed(config, clip, args.seconds)  # warm-up run
            speeds[name] = video_speed(config, clip, args.seconds)
        add(f"video, six faces, {args.seconds:g} s: x real time", f"{speeds['before']:.2f}x", f"{speeds['after']:.2f}x", f"{speeds['after'] / speeds['before']:.2f}x")
    jobs = {name: first_jobs(config) for name, config in (("before", BEFORE), ("after", after))}
    for kind in ("photo", "speech"):
        fb, sb = jobs["before"][kind]
        fa, sa = jobs["after"][kind]
        add(f"first {kind} job after warm-up: first / second ms (ratio)", f"{fb:.0f} / {sb:.0f} ({fb / sb:.1f})", f"{fa:.0f} / {sa:.0f} ({fa / sa:.1f})", f"{fb / fa:.2f}x faster (first)")


if __name__ == "__main__":
    main()
