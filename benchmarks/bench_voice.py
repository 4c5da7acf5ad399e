"""Voice pipeline speed: a 3 s clip end to end, against baselines, and the audio decoders.

    .venv/bin/python -m benchmarks.bench_voice [--model NAME] [--baseline NAME] [--repeats 30]

Prints three tables (median ms over ``--repeats`` timed runs after a warm-up, all in this run on
this machine):

1. one 3 s speech clip (16 kHz FLAC bytes, tests/media/speech): decode, features, classify and the
   whole ``voice.analyse_signal``, for the served model and the baseline model (the MFCC MLP);
2. the features alone: the numpy log-mel used in serving against ``librosa.feature.melspectrogram``
   with the same parameters, and the baseline's librosa MFCC;
3. decoding the same 3.8 s clip in each format with libsndfile (soundfile) and PyAV: the evidence
   behind the decoder choice in ``recognition/inference/audio.py``.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks._common import median_ms
from recognition.inference import audio, registry, voice
from training.voice import encode

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "media" / "speech" / "03-01-05-02-01-01-18.flac"


def three_seconds() -> tuple[bytes, np.ndarray]:
    """The clip's speech, exactly 3 s (trimmed, then cut/padded), as FLAC bytes and as a signal."""
    signal = audio.decode_audio(CLIP.read_bytes())
    start, _ = audio.trim_bounds(signal)
    signal = np.pad(signal[start:], (0, 48000))[:48000]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.flac"
        encode(signal, audio.SAMPLE_RATE, path, "flac")
        return path.read_bytes(), signal


def table(title: str, header: tuple[str, ...], rows: list[tuple]) -> None:
    print(f"\n{title}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |")


def pipeline_row(name: str, data: bytes, signal: np.ndarray, repeats: int) -> tuple:
    model = registry.get_model(name, task="voice")
    kind = model.card["input"]["features"]
    x = audio.model_input(audio.trim(signal), kind)[None]
    return (
        f"{name} ({model.card['architecture']}, {kind})",
        median_ms(lambda: audio.decode_audio(data), repeats),
        median_ms(lambda: (audio.voiced_mask(signal), audio.model_input(audio.trim(signal), kind)), repeats),
        median_ms(lambda: model.predict(x), repeats),
        median_ms(lambda: voice.analyse_signal(audio.decode_audio(data), model), repeats),
    )


def feature_rows(signal: np.ndarray, repeats: int) -> list[tuple]:
    import librosa

    def librosa_log_mel():
        mel = librosa.feature.melspectrogram(y=signal, sr=audio.SAMPLE_RATE, n_fft=audio.N_FFT, win_length=audio.WIN_LENGTH,
                                             hop_length=audio.HOP_LENGTH, n_mels=audio.N_MELS, fmin=audio.FMIN, fmax=audio.FMAX)
        return np.log(mel + audio.LOG_FLOOR)

    ours, ref = audio.log_mel(signal), librosa_log_mel().T
    return [
        ("log-mel 64, numpy (serving)", median_ms(lambda: audio.log_mel(signal), repeats), f"max |diff| vs librosa {np.abs(ours - ref)[2:-2].max():.0e} (2 edge frames: librosa pads with zeros)"),
        ("log-mel 64, librosa.feature.melspectrogram", median_ms(librosa_log_mel, repeats), ""),
        ("mean MFCC(40), librosa (baseline)", median_ms(lambda: audio.mfcc_mean(signal), repeats), ""),
        ("speech rule (voiced_mask)", median_ms(lambda: audio.voiced_mask(signal), repeats), ""),
    ]


def decoder_row(label: str, data: bytes, repeats: int) -> tuple:
    import av
    import soundfile as sf

    def with_soundfile():
        return sf.read(io.BytesIO(data), dtype="float32")

    def with_av():
        with av.open(io.BytesIO(data)) as container:
            return [f.to_ndarray() for f in container.decode(audio=0)]

    try:
        sf_ms: object = median_ms(with_soundfile, repeats)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        sf_ms = f"cannot ({type(exc).__name__})"
    chosen = audio.sniff_audio_format(data).decoder
    return (label, sf_ms, median_ms(with_av, repeats), chosen, median_ms(lambda: audio.decode_audio(data), repeats))


def decoder_rows(repeats: int) -> list[tuple]:
    signal = audio.decode_audio((REPO / "tests" / "media" / "speech" / "03-01-03-02-01-01-18.flac").read_bytes())
    formats = [("WAV 48 kHz", "wav", "pcm_s16le", 48000, None), ("FLAC 16 kHz", "flac", "flac", 16000, None),
               ("MP3 128k", "mp3", "libmp3lame", 44100, 128_000), ("Ogg/Opus", "ogg", "libopus", 48000, 64_000),
               ("M4A/AAC 128k", "m4a", "aac", 44100, 128_000), ("WEBM/Opus", "webm", "libopus", 48000, 64_000)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, ext, codec, rate, bitrate in formats:
            path = Path(tmp) / f"clip.{ext}"
            encode(audio.resample(signal, audio.SAMPLE_RATE, rate), rate, path, codec, bitrate)
            rows.append(decoder_row(label, path.read_bytes(), repeats))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model to time (default: the served voice model)")
    parser.add_argument("--baseline", default="voice_mlp", help="baseline model timed in the same run")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    served = args.model or registry.served_name("voice")
    data, signal = three_seconds()
    print(f"voice benchmark on {os.cpu_count()} CPU(s), python {sys.version.split()[0]}; median of {args.repeats} runs, ms")
    names = [served] + ([args.baseline] if args.baseline and args.baseline != served else [])
    table("1. One 3 s clip (FLAC bytes): target <= 50 ms end to end",
          ("model", "decode", "speech rule + features", "classify", "analyse (all)"), [pipeline_row(n, data, signal, args.repeats) for n in names])
    table("2. Features of one 3 s window", ("feature", "ms", "note"), feature_rows(signal, args.repeats))
    table("3. Decoding a 3.8 s clip", ("format", "soundfile", "PyAV", "chosen", "decode_audio (incl. resample)"), decoder_rows(max(5, args.repeats // 3)))


if __name__ == "__main__":
    main()
