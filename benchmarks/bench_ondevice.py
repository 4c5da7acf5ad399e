"""The on-device face pipeline (static/js/ondevice/, onnxruntime-web WebAssembly, one thread) in
headless Chromium: ms per frame and frames per second with 1 face, 1 face tilted 20 degrees (its
landmarks refined in three turned views, static/js/ondevice/refine.js) and 4 faces (detection,
crops and the live model with its hflip view), at 640x480 and at the live page's 320x240, each
as single frames and as a live session (tracked, as the live page runs: the turned detector views
every 10th frame and where a track needs them, refined landmarks reused while a tilt holds), and
the bytes a first visit downloads for it
(the vendored runtime, the pipeline's modules and the two model files). Run on demand:

    PYTHONPATH=. .venv/bin/python benchmarks/bench_ondevice.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.ondevice import MODELS, open_harness, pipeline_config, static_server
from tests.livesite import launch_chromium
from training.evaluate_pose import place

W, H = 640, 480
FER = ROOT / "tests" / "media" / "fer2013" / "test"


def fer_faces(n: int) -> list[np.ndarray]:
    paths = sorted(FER.rglob("*.jpg")) + sorted(FER.rglob("*.png"))
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths[:n]]


def one_face_frame(angle: float = 0.0) -> np.ndarray:
    return place(fer_faces(1)[0], 240, angle)[0]


def four_face_frame() -> np.ndarray:
    """Four FER faces, 200 px each, in a 2x2 grid on a mid-grey 640x480 frame."""
    frame = np.full((H, W), 128, np.uint8)
    for k, face in enumerate(fer_faces(4)):
        top, left = 30 + (k // 2) * 220, 100 + (k % 2) * 240
        frame[top : top + 200, left : left + 200] = cv2.resize(face, (200, 200), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def rgba(bgr: np.ndarray) -> bytes:
    return np.dstack([bgr[:, :, ::-1], np.full(bgr.shape[:2], 255, np.uint8)]).tobytes()


def first_visit_bytes(config: dict) -> dict[str, int]:
    vendor = ROOT / "static" / "vendor" / "onnxruntime-web"
    files = {
        "wasm": [vendor / "ort-wasm-simd-threaded.wasm"],
        "js": [vendor / "ort.wasm.min.mjs", vendor / "ort-wasm-simd-threaded.mjs", *sorted((ROOT / "static" / "js" / "ondevice").glob("*.js"))],
        "models": [MODELS / "face_detection_yunet.onnx", *[MODELS / m["url"].rsplit("/", 1)[1] for m in config["members"]]],
    }
    return {kind: sum(p.stat().st_size for p in paths) for kind, paths in files.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="passes over each frame (after one warm-up)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from recognition.inference import registry

    config = pipeline_config(registry.served_name("face_live", MODELS))  # the served live model
    half = lambda f: cv2.resize(f, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
    frames = {"1 face": one_face_frame(), "1 face tilted 20 deg": one_face_frame(20.0), "4 faces": four_face_frame()}
    routes = {f"/{i}.rgba": rgba(f) for i, f in enumerate(frames.values())}
    routes |= {f"/{i}-half.rgba": rgba(half(f)) for i, f in enumerate(frames.values())}
    with static_server(routes) as base, sync_playwright() as p:
        browser = launch_chromium(p)
        page, errors = open_harness(browser, base, timeout_ms=600_000)
        page.evaluate("c => window.ondevice.load(c)", config)
        print(f"headless Chromium, onnxruntime-web wasm, 1 thread, {config['members'][0]['url']}, {args.repeat} passes each")
        for (w, h), suffix in (((W, H), ""), ((W // 2, H // 2), "-half")):
            for i, name in enumerate(frames):
                for tracked in (False, True):
                    r = page.evaluate("([u, w, h, n, t]) => window.ondevice.bench(u, w, h, n, t)", [f"/{i}{suffix}.rgba", w, h, args.repeat, tracked])
                    mode = "live session" if tracked else "single frames"
                    print(f"{w}x{h} {name:21s} {mode:13s} faces found {r['faces']:.0f}: {r['ms']:.1f} ms per frame, {1000 / r['ms']:.1f} fps")
        browser.close()
    assert not errors, errors
    sizes = first_visit_bytes(config)
    total = sum(sizes.values())
    print("first visit downloads " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items()) + f"; total {total} bytes ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
