"""Audio decoding and the shared voice preprocessing, on real speech clips (RAVDESS actors 17-20)."""
from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from recognition.inference import audio
from recognition.inference.errors import InvalidMedia
from tests.conftest import SPEECH
from training import voice as training_voice

CLIPS = sorted(SPEECH.glob("*.flac"))

# (file name, PyAV codec, sample rate, bit rate, container): every format people send.
FORMATS = [
    ("clip.wav", "pcm_s16le", 48000, None, None),
    ("clip.mp3", "libmp3lame", 44100, 128_000, None),
    ("clip.m4a", "aac", 44100, 128_000, None),
    ("clip.opus", "libopus", 48000, 64_000, "ogg"),
    ("clip.flac", "flac", 22050, None, None),
    ("clip.webm", "libopus", 48000, 64_000, "webm"),
]


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return audio.decode_audio((SPEECH / "03-01-03-02-01-01-18.flac").read_bytes())


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, speech) -> dict[str, bytes]:
    """The happy clip re-encoded in every format (PyAV, its own FFmpeg)."""
    folder = tmp_path_factory.mktemp("formats")
    out = {}
    for name, codec, rate, bitrate, container in FORMATS:
        path = folder / name
        training_voice.encode(audio.resample(speech, audio.SAMPLE_RATE, rate), rate, path, codec, bitrate, container)
        out[name] = path.read_bytes()
    return out


def wav_bytes(signal: np.ndarray, rate: int = 16000, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as fh:
        fh.setnchannels(channels)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("name", [f[0] for f in FORMATS])
def test_every_format_decodes_to_the_same_speech(encoded, speech, name):
    data = encoded[name]
    signal = audio.decode_audio(data)
    assert signal.dtype == np.float32 and signal.ndim == 1
    # Same duration within codec padding (AAC/Opus/MP3 add a few tens of ms).
    assert abs(len(signal) - len(speech)) / audio.SAMPLE_RATE < 0.1
    # Same speech where it matters: the trimmed region and its loudness envelope line up.
    start, end = audio.trim_bounds(signal)
    ref_start, ref_end = audio.trim_bounds(speech)
    assert abs(start - ref_start) / audio.SAMPLE_RATE < 0.1
    assert abs(end - ref_end) / audio.SAMPLE_RATE < 0.1
    n = min(len(signal), len(speech))
    a, b = audio.frame_db(speech[:n]), audio.frame_db(signal[:n])
    shift = max(range(-8, 9), key=lambda k: np.corrcoef(np.roll(a, k), b)[0, 1])
    assert np.corrcoef(np.roll(a, shift), b)[0, 1] > 0.95


def test_format_is_sniffed_from_bytes_not_names(encoded):
    assert audio.sniff_audio_format(encoded["clip.m4a"]).name == "mp4"
    assert audio.sniff_audio_format(encoded["clip.webm"]).name == "webm"
    assert audio.sniff_audio_format(encoded["clip.opus"]).name == "ogg"
    assert audio.sniff_audio_format(encoded["clip.mp3"]).name == "mp3"
    assert audio.sniff_audio_format(encoded["clip.wav"]).name == "wav"


def test_stereo_is_downmixed_to_mono(speech):
    stereo = np.stack([speech, speech * 0.5], axis=1)  # interleaved L/R frames
    signal = audio.decode_audio(wav_bytes(stereo.reshape(-1), channels=2))
    assert len(signal) == len(speech)
    np.testing.assert_allclose(signal, speech * 0.75, atol=2e-4)


def test_wav_at_another_rate_is_resampled_to_16k(speech):
    signal = audio.decode_audio(wav_bytes(audio.resample(speech, 16000, 44100), rate=44100))
    assert abs(len(signal) - len(speech)) <= 2
    assert np.corrcoef(signal[: len(speech)], speech[: len(signal)])[0, 1] > 0.99


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt garbage garbage garbage", "could not"),
        (b"fLaC" + bytes(range(256)) * 4, "could not"),
        (b"\x1a\x45\xdf\xa3" + b"\x00" * 300, "could not"),
        (b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 200, "could not"),
        (b"hello, this is a text file\n" * 10, "not a supported audio"),
        (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "not a supported audio"),
    ],
)
def test_empty_corrupt_and_non_audio_bytes_are_refused(data, message):
    with pytest.raises(InvalidMedia) as info:
        audio.decode_audio(data)
    assert message in str(info.value).lower() or "corrupt" in str(info.value).lower() or "no audio" in str(info.value).lower()


def test_a_photo_is_refused_with_a_clear_message(face_photo):
    with pytest.raises(InvalidMedia, match="JPEG image, not an audio"):
        audio.decode_audio(face_photo)


def test_zero_length_audio_is_refused():
    with pytest.raises(InvalidMedia, match="no audio"):
        audio.decode_audio(wav_bytes(np.zeros(0, dtype=np.float32)))


def test_truncated_file_is_refused_or_decodes_what_is_there(encoded):
    with pytest.raises(InvalidMedia):
        audio.decode_audio(encoded["clip.m4a"][:100])


def test_too_long_is_refused_from_the_stated_duration(encoded):
    data = wav_bytes(np.zeros(16000 * 12, dtype=np.float32) + 0.01)
    with pytest.raises(InvalidMedia, match="limit is 5 s"):
        audio.decode_audio(data, max_seconds=5)
    with pytest.raises(InvalidMedia, match="limit is 2 s"):
        audio.decode_audio(encoded["clip.webm"], max_seconds=2)
    assert len(audio.decode_audio(data, max_seconds=20)) == 16000 * 12


def test_default_limit_comes_from_settings(settings):
    settings.MAX_AUDIO_SECONDS = 1
    with pytest.raises(InvalidMedia, match="limit is 1 s"):
        audio.decode_audio(wav_bytes(np.zeros(16000 * 3, dtype=np.float32)))


def test_wrong_type_is_refused():
    with pytest.raises(InvalidMedia):
        audio.decode_audio("not bytes")  # type: ignore[arg-type]


# --- preprocessing shared by training and serving ---------------------------------------------


def test_training_and_serving_features_are_identical(tmp_path, monkeypatch):
    """training.voice (cache, packing, epoch batches) feeds exactly what serving computes."""
    monkeypatch.setattr(training_voice, "CACHE", tmp_path)
    clips = training_voice.list_clips(SPEECH)
    for kind in ("log_mel", "mfcc_mean"):
        data = training_voice.load_features(clips, kind, augment=False, seed=0, log=lambda m: None)
        served = np.stack([audio.model_input(audio.trim(audio.decode_audio(c.path.read_bytes())), kind) for c in clips])
        trained = data["x"] if kind == "mfcc_mean" else training_voice.epoch_batch(data, np.random.default_rng(0), False, 0.0)
        np.testing.assert_array_equal(trained, served)
    assert served.shape == (len(clips), audio.N_MFCC)


def test_features_do_not_depend_on_gain(speech):
    loud, quiet = audio.model_input(audio.trim(speech), "log_mel"), audio.model_input(audio.trim(speech * 0.05), "log_mel")
    np.testing.assert_allclose(loud, quiet, atol=1e-3)
    assert loud.shape == (audio.WINDOW_FRAMES, audio.N_MELS)


def test_trim_removes_leading_and_trailing_silence(speech):
    padded = np.concatenate([np.zeros(16000), speech, np.zeros(8000)]).astype(np.float32)
    start, end = audio.trim_bounds(padded)
    ref_start, ref_end = audio.trim_bounds(speech)
    assert abs(start - (16000 + ref_start)) <= audio.HOP_LENGTH
    assert abs(end - (16000 + ref_end)) <= audio.HOP_LENGTH


def test_window_count_follows_the_3s_1_5s_rule():
    sr = audio.SAMPLE_RATE
    assert audio.window_bounds(2 * sr) == [(0, 2 * sr)]
    assert len(audio.window_bounds(3 * sr)) == 1
    bounds = audio.window_bounds(10 * sr)
    assert len(bounds) == 1 + int(np.ceil((10 - 3) / 1.5)) == 6
    assert all(e - s == 3 * sr for s, e in bounds)
    assert bounds[0][0] == 0 and bounds[-1][1] == 10 * sr
    assert [s for s, _ in bounds[:-1]] == [int(i * 1.5 * sr) for i in range(5)]


def test_silence_and_noise_are_not_speech(speech):
    rng = np.random.default_rng(1)
    assert not audio.has_speech(audio.voiced_mask(np.zeros(48000, dtype=np.float32)))
    assert not audio.has_speech(audio.voiced_mask(rng.normal(0, 0.1, 48000).astype(np.float32)))
    assert not audio.has_speech(audio.voiced_mask(rng.normal(0, 1e-4, 48000).astype(np.float32)))
    assert audio.has_speech(audio.voiced_mask(speech))
    # Speech under noise at about 20 dB SNR is still speech.
    start, end = audio.trim_bounds(speech)
    noise = rng.normal(0, np.sqrt(np.mean(speech[start:end] ** 2) / 100), len(speech)).astype(np.float32)
    assert audio.has_speech(audio.voiced_mask(speech + noise))


@pytest.mark.parametrize("path", CLIPS, ids=[p.stem for p in CLIPS])
def test_every_test_clip_is_speech(path: Path):
    assert audio.has_speech(audio.voiced_mask(audio.decode_audio(path.read_bytes())))
