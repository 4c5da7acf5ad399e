"""Try an int8 engine file for a face network, and say whether it may serve.

    python -m training.quantize_engine face_vgg [--calibration 512]
    python -m training.quantize_engine --served face_ensemble [--write]

With ``--served`` the decision is taken where it matters: every network member of the served
model (an ensemble with its views) is quantized, and the served model as a whole, int8 members
against float ones, is compared on validation (the rule) and PublicTest (reported); speed is
``benchmarks.bench_engines``'s.

ONNX Runtime's static quantization (QDQ, int8 weights per channel, uint8 activations with
``reduce_range`` so AVX2 CPUs without VNNI do not saturate) is calibrated on faces of the training
split (never validation or test), then the float and int8 files are compared on the validation
split (the decision: int8 may serve only if it loses at most ``MAX_LOSS_POINTS``) and on PublicTest
(reported), with each one's time per batch of 8 faces. Nothing is written to ``models/`` unless
``--write`` is given and the validation rule passes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from recognition.inference import engine, registry
from recognition.inference.preprocessing import faces_to_input
from training import data as datasets
from training import export_engine
from training.face_ensemble import validation_split

MAX_LOSS_POINTS = 0.3


def accuracy(runner: engine.OnnxRunner, x: np.ndarray, y: np.ndarray) -> float:
    p = np.concatenate([runner.run(x[i : i + 256]) for i in range(0, len(x), 256)])
    return float((p.argmax(1) == y).mean())


def per_batch_ms(runner: engine.OnnxRunner, x: np.ndarray, repeats: int = 100) -> float:
    batch = x[:8]
    for _ in range(5):
        runner.run(batch)
    t0 = time.perf_counter()
    for _ in range(repeats):
        runner.run(batch)
    return (time.perf_counter() - t0) * 1000 / repeats


def quantize(source: Path, target: Path, calibration: np.ndarray) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{name: calibration[i : i + 64]} for i in range(0, len(calibration), 64)])

        def get_next(self):
            return next(self.batches, None)

    name = engine.OnnxRunner(source, threads=1).input_name
    prepared = target.with_suffix(".pre.onnx")
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(target), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    prepared.unlink()


def served_main(args) -> dict:
    """Quantize every member of ``args.served`` into a copy of the models folder; compare the served
    model (views, temperature) float against int8; with ``--write`` and a pass, record each member's
    int8 file in its card."""
    card = registry.load_card(args.served, args.models_dir)
    members = [m["name"] for m in card.get("members", [])] or [args.served]
    if args.members:  # only these networks int8, the others float (a network shared by two served models)
        members = [m for m in members if m in args.members]
    x_all, y_all = datasets.load_face_arrays(args.train)
    train_idx, _ = datasets.stratified_split(y_all, 0.1, 1337)
    calibration = faces_to_input(x_all[np.random.default_rng(0).choice(train_idx, args.calibration, replace=False)])
    x_val, y_val = validation_split(args.train)
    x_test, y_test = datasets.load_face_arrays(args.test)
    x_val, x_test = faces_to_input(x_val), faces_to_input(x_test)
    copy = Path(tempfile.mkdtemp(prefix="quantize-"))
    for path in args.models_dir.iterdir():
        if path.is_file():
            shutil.copyfile(path, copy / path.name)
    for name in members:
        member = registry.load_card(name, copy)
        target = copy / f"{Path(member['engine']['file']).stem}.int8.onnx"
        quantize(copy / member["engine"]["file"], target, calibration)
        member["engine"]["int8"] = {"file": target.name, "sha256": registry.sha256_file(target)}
        (copy / f"{name}.json").write_text(json.dumps(member, indent=2) + "\n")
    rows = {}
    for label, directory in (("float32", args.models_dir), ("int8", copy)):
        os.environ["INFERENCE_PRECISION"] = "auto"
        registry.clear_cache()
        model = registry.get_model(args.served, directory=directory)

        def acc(x, y, model=model):
            return float((np.concatenate([model.predict(x[i : i + 256]) for i in range(0, len(x), 256)]).argmax(1) == y).mean())

        rows[label] = {"engine": model.engine, "validation": acc(x_val, y_val), "test": acc(x_test, y_test)}
    registry.clear_cache()
    loss = (rows["float32"]["validation"] - rows["int8"]["validation"]) * 100
    verdict = {"validation_loss_points": round(loss, 2), "test_loss_points": round((rows["float32"]["test"] - rows["int8"]["test"]) * 100, 2),
               "serve_int8": loss <= MAX_LOSS_POINTS}
    print(f"{args.served} (int8: {', '.join(members)}; views {card.get('tta') or ['none']})")
    print("| members | engine | validation | PublicTest |\n|---|---|---|---|")
    for label, row in rows.items():
        print(f"| {label} | {row['engine']} | {row['validation']:.4f} | {row['test']:.4f} |")
    print(json.dumps(verdict))
    if args.write and verdict["serve_int8"]:
        for name in members:
            main([name, "--models-dir", str(args.models_dir), "--train", str(args.train), "--test", str(args.test),
                  "--calibration", str(args.calibration), "--write", "--max-loss", "100"])
            member = registry.load_card(name, args.models_dir)
            member["engine"]["int8"]["rule"] = (
                f"served because {args.served} as served, with every network int8, loses {loss:.2f} points on validation "
                f"(at most {MAX_LOSS_POINTS}); PublicTest {rows['int8']['test']:.4f} against {rows['float32']['test']:.4f}")
            export_engine.rewrite(member, args.models_dir)
    shutil.rmtree(copy, ignore_errors=True)
    return {"rows": rows, **verdict}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="a face network with an engine file in --models-dir")
    parser.add_argument("--served", metavar="MODEL", help="decide for this served model (an ensemble: all its networks) as a whole")
    parser.add_argument("--members", nargs="*", default=None, help="with --served: quantize only these of its networks")
    parser.add_argument("--max-loss", type=float, default=MAX_LOSS_POINTS, help=argparse.SUPPRESS)  # --served decided already
    parser.add_argument("--models-dir", type=Path, default=datasets.REPO / "models")
    parser.add_argument("--train", type=Path, default=datasets.DEFAULT_FER / "train")
    parser.add_argument("--test", type=Path, default=datasets.DEFAULT_FER / "test")
    parser.add_argument("--calibration", type=int, default=512, help="training faces to calibrate on")
    parser.add_argument("--write", action="store_true", help="when int8 passes on validation, write <name>.int8.onnx and record it in the card (served from then on)")
    args = parser.parse_args(argv)
    if args.served:
        return served_main(args)
    if not args.name:
        parser.error("name a face network, or --served MODEL")
    card = registry.load_card(args.name, args.models_dir)
    source = args.models_dir / card["engine"]["file"]
    x_all, y_all = datasets.load_face_arrays(args.train)
    train_idx, _ = datasets.stratified_split(y_all, 0.1, 1337)
    rng = np.random.default_rng(0)
    calibration = faces_to_input(x_all[rng.choice(train_idx, args.calibration, replace=False)])
    x_val, y_val = validation_split(args.train)
    x_test, y_test = datasets.load_face_arrays(args.test)
    x_val, x_test = faces_to_input(x_val), faces_to_input(x_test)
    target = Path(tempfile.mkdtemp()) / f"{Path(card['engine']['file']).stem}.int8.onnx"
    quantize(source, target, calibration)
    rows = {}
    for label, path in (("float32", source), ("int8", target)):
        runner = engine.OnnxRunner(path, threads=1)
        rows[label] = {"validation": accuracy(runner, x_val, y_val), "test": accuracy(runner, x_test, y_test),
                       "ms_per_8_faces": per_batch_ms(runner, x_val), "bytes": path.stat().st_size}
    loss = (rows["float32"]["validation"] - rows["int8"]["validation"]) * 100
    verdict = {"validation_loss_points": round(loss, 2), "test_loss_points": round((rows["float32"]["test"] - rows["int8"]["test"]) * 100, 2),
               "serve_int8": loss <= args.max_loss}
    print("| file | validation | PublicTest | ms per 8 faces (1 thread) | bytes |\n|---|---|---|---|---|")
    for label, row in rows.items():
        print(f"| {label} | {row['validation']:.4f} | {row['test']:.4f} | {row['ms_per_8_faces']:.2f} | {row['bytes']:,} |")
    print(json.dumps(verdict))
    if args.write and verdict["serve_int8"]:
        served = args.models_dir / target.name
        shutil.copyfile(target, served)
        card["engine"]["int8"] = {
            "file": served.name, "sha256": registry.sha256_file(served), "calibration": f"{args.calibration} FER2013 training faces (not validation, not test)",
            "validation_accuracy": round(rows["int8"]["validation"], 4), "float_validation_accuracy": round(rows["float32"]["validation"], 4),
            "test_accuracy": round(rows["int8"]["test"], 4), "float_test_accuracy": round(rows["float32"]["test"], 4),
            "ms_per_8_faces": round(rows["int8"]["ms_per_8_faces"], 2), "float_ms_per_8_faces": round(rows["float32"]["ms_per_8_faces"], 2),
            "rule": f"served because it loses at most {MAX_LOSS_POINTS} points on validation",
        }
        export_engine.rewrite(card, args.models_dir)
        print(f"wrote {served} and its entry in {args.name}.json")
    return {"rows": rows, **verdict}


if __name__ == "__main__":
    main()
