"""YuNet, the face detector, run by ONNX Runtime instead of OpenCV's DNN module.

The network is the same file (``models/face_detection_yunet.onnx``); what ``cv2.FaceDetectorYN``
does around it is done here the same way (OpenCV's ``modules/objdetect/src/face_detect.cpp``):
the image is padded at the right and bottom to a multiple of 32, fed as a float BGR blob, and each
stride's (8, 16, 32) outputs are decoded into rows of ``[x, y, w, h, 5 x (x, y) landmarks,
score]`` with score = sqrt(class x objectness), then merged by ``cv2.dnn.NMSBoxes`` over integer
boxes. ``tests/test_yunet.py`` holds the two to the same rows on real photos.

Why: detection is the largest share of a photo with turned views and of a live frame, and ONNX
Runtime runs the network 1.6-1.9x faster than OpenCV 5's DNN engine, one thread each, with the
same rows (``benchmarks/bench_face.py``'s detector table; docs/serving.md). A session is shared by all
threads (ONNX Runtime's ``run`` is thread-safe); no shape is traced, so any image size is served.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

STRIDES = (8, 16, 32)
DIVISOR = 32


class YuNet:
    """``detect(bgr, score_threshold, nms_threshold, top_k)`` -> (N, 15) float32 rows, best first,
    as ``cv2.FaceDetectorYN.detect`` returns them."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self.outputs = [f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES]
        missing = set(self.outputs) - set(names)
        if missing:
            raise ValueError(f"{path} is not a YuNet 2023 model: outputs {sorted(missing)} missing")

    def detect(self, bgr: np.ndarray, score_threshold: float, nms_threshold: float, top_k: int) -> np.ndarray:
        height, width = bgr.shape[:2]
        pad_w = ((width - 1) // DIVISOR + 1) * DIVISOR
        pad_h = ((height - 1) // DIVISOR + 1) * DIVISOR
        padded = cv2.copyMakeBorder(bgr, 0, pad_h - height, 0, pad_w - width, cv2.BORDER_CONSTANT, value=0)
        blob = np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32)
        out = dict(zip(self.outputs, self.session.run(self.outputs, {self.input_name: blob}), strict=True))
        rows = []
        for stride in STRIDES:
            cols = pad_w // stride
            cls = np.clip(out[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
            obj = np.clip(out[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
            score = np.sqrt(cls * obj)
            keep = np.flatnonzero(score >= np.float32(score_threshold))
            if not len(keep):
                continue
            c = (keep % cols).astype(np.float32)
            r = (keep // cols).astype(np.float32)
            box = out[f"bbox_{stride}"].reshape(-1, 4)[keep]
            kps = out[f"kps_{stride}"].reshape(-1, 10)[keep]
            s = np.float32(stride)
            w = np.exp(box[:, 2]) * s
            h = np.exp(box[:, 3]) * s
            x1 = (c + box[:, 0]) * s - w / 2
            y1 = (r + box[:, 1]) * s - h / 2
            points = np.empty((len(keep), 10), np.float32)
            points[:, 0::2] = (kps[:, 0::2] + c[:, None]) * s
            points[:, 1::2] = (kps[:, 1::2] + r[:, None]) * s
            rows.append(np.column_stack([x1, y1, w, h, points, score[keep]]).astype(np.float32))
        if not rows:
            return np.empty((0, 15), np.float32)
        faces = np.concatenate(rows)
        if len(faces) > 1:
            boxes = [[int(x), int(y), int(w), int(h)] for x, y, w, h in faces[:, :4]]
            kept = cv2.dnn.NMSBoxes(boxes, faces[:, 14].tolist(), float(score_threshold), float(nms_threshold), 1.0, int(top_k))
            faces = faces[np.asarray(kept, dtype=np.int64).reshape(-1)]
        return faces


_lock = threading.Lock()
_sessions: dict[tuple[str, int], YuNet] = {}


def get(path: Path, threads: int = 1) -> YuNet:
    """The process's YuNet session for ``path`` (made once; shared by every thread)."""
    key = (str(path), int(threads))
    with _lock:
        if key not in _sessions:
            _sessions[key] = YuNet(path, threads)
        return _sessions[key]
