"""Video pipeline speed: seconds of processing per second of 640x480 video.

    .venv/bin/python -m benchmarks.bench_video [--seconds 10] [--repeats 3] [--fps 2 4 5 10]

The video is made in memory by tests/video_media.py (H.264 640x480 at 25 fps panning over
tests/media/test_image.jpg, six faces, with a real speech clip as AAC sound). After one warm-up
run (model loading is not counted), each configuration is timed ``--repeats`` times and the
median is reported, all in this run on this machine:

- ``decode only``: PyAV decoding every frame, nothing else (the floor any sampling rate pays);
- ``video.analyze_video`` at each ``--fps`` sampling rate (settings.VIDEO_SAMPLE_FPS is 4;
  the target is faster than real time at 5);
- ``5 fps, per frame``: 5 fps with one face-model call per frame (``batch_frames=1``, what
  calling ``faces.analyze_image`` per frame costs), the baseline for batching the faces of
  ``video.CLASSIFY_BATCH_FRAMES`` frames per call;
- ``every frame``: the served pipeline at the source's 25 fps, i.e. every frame analysed, the
  naive baseline sampling is compared with.

Columns: frames analysed, median wall-clock seconds, seconds of processing per second of video
(below 1 is faster than real time), the same in CPU seconds of this process (all its threads;
less sensitive to other work on a shared machine) and the split between decoding, faces and
voice (wall ms).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import av

from recognition.inference import registry, video
from tests.video_media import make_video

SOURCE_FPS = 25


def decode_only(data: bytes) -> int:
    """Decode every frame (no conversion); returns the frame count."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """(median wall seconds, median CPU seconds of this process, last result)."""
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fps", type=float, nargs="+", default=[2.0, 4.0, 5.0, 10.0])
    args = parser.parse_args()

    data = make_video(seconds=args.seconds, fps=SOURCE_FPS, size=(640, 480))
    face = registry.get_model(task="face").info()
    voice = registry.get_model(task="voice").info()
    video.analyze_video(
        data, sample_fps=2.0, max_seconds=600
    )  # warm-up: models, first calls

    rows = []
    seconds, cpu, frames = timed(lambda: decode_only(data), args.repeats)
    rows.append(("decode only", frames, seconds, cpu, None))
    seconds, cpu, result = timed(
        lambda: video.analyze_video(
            data, sample_fps=5.0, max_seconds=600, batch_frames=1
        ),
        args.repeats,
    )
    rows.append(
        ("5 fps, per frame", len(result["timeline"]), seconds, cpu, result["timings"])
    )
    for fps in [*args.fps, SOURCE_FPS]:
        seconds, cpu, result = timed(
            lambda fps=fps: video.analyze_video(data, sample_fps=fps, max_seconds=600),
            args.repeats,
        )
        name = "every frame" if fps == SOURCE_FPS else f"sampled {fps:g} fps"
        rows.append((name, len(result["timeline"]), seconds, cpu, result["timings"]))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{args.seconds:g} s of 640x480 H.264 at {SOURCE_FPS} fps with speech; face "
        f"{face['name']} {face['version']}, voice {voice['name']} {voice['version']}; "
        f"{os.cpu_count()} CPUs, load {load:.1f}; median of {args.repeats}"
    )
    header = (
        f"{'configuration':<18}{'frames':>7}{'wall s':>8}{'s per s':>9}{'x real time':>12}"
        f"{'CPU s per s':>13}  split (decode / faces / voice ms)"
    )
    print(header)
    print("-" * len(header))
    for name, frames, seconds, cpu, timings in rows:
        per = seconds / args.seconds
        split = ""
        if timings:
            split = f"{timings['decode_ms']:.0f} / {timings['faces_ms']:.0f} / {timings['voice_ms']:.0f}"
        print(
            f"{name:<18}{frames:>7}{seconds:>8.2f}{per:>9.3f}{1 / per:>12.1f}"
            f"{cpu / args.seconds:>13.3f}  {split}"
        )


if __name__ == "__main__":
    main()
