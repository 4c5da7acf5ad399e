"""voice.analyze_audio with the shipped model on real speech (RAVDESS actors 17-20, never trained on)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from recognition.inference import audio, registry, voice
from recognition.inference.errors import InvalidMedia
from recognition.inference.labels import VOICE_EMOTIONS
from tests.conftest import SPEECH
from tests.test_audio import wav_bytes
from training.voice import parse_ravdess_name

CLIPS = sorted(SPEECH.glob("*.flac"))


def signal_of(name: str) -> np.ndarray:
    return audio.decode_audio((SPEECH / name).read_bytes())


def test_contract_on_a_real_clip(speech_clip):
    result = voice.analyze_audio(speech_clip.read_bytes())
    assert set(result) >= {"emotion", "confidence", "probabilities", "speech", "duration", "windows", "model"}
    assert result["speech"] is True
    assert list(result["probabilities"]) == list(VOICE_EMOTIONS)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert result["emotion"] == max(result["probabilities"], key=result["probabilities"].get)
    assert result["confidence"] == pytest.approx(max(result["probabilities"].values()), abs=1e-4)
    assert result["duration"] == pytest.approx(3.77, abs=0.01)
    assert len(result["windows"]) == 1
    window = result["windows"][0]
    assert 0 <= window["start"] < window["end"] <= result["duration"]
    assert window["emotion"] in VOICE_EMOTIONS
    served = registry.get_model(task="voice")
    assert result["model"] == {"name": registry.served_name("voice"), "version": served.version,
                               **({"members": [m.info() for m in served.members]} if hasattr(served, "members") else {})}


def test_bytes_and_decoded_array_give_the_same_result(speech_clip):
    from_bytes = voice.analyze_audio(speech_clip.read_bytes())
    from_array = voice.analyze_audio(audio.decode_audio(speech_clip.read_bytes()))
    assert from_bytes["probabilities"] == from_array["probabilities"]
    assert from_bytes["windows"] == from_array["windows"]


def test_model_is_loaded_once_per_process():
    assert registry.get_model(task="voice") is registry.get_model(task="voice")


def test_shipped_model_recognises_the_clear_angry_clips():
    """Loose: the two strong-intensity angry clips (actors 18 and 20, never seen in training)
    come out angry, and at least half of the six held-out clips are right (chance: 1 in 8).
    The happy clips are not asserted: the shipped model confuses them (fearful, surprised)."""
    results = {p.name: voice.analyze_audio(p.read_bytes()) for p in CLIPS}
    truth = {name: VOICE_EMOTIONS[parse_ravdess_name(SPEECH / name)[0]] for name in results}
    for name in ("03-01-05-02-01-01-18.flac", "03-01-05-02-02-01-20.flac"):
        assert results[name]["emotion"] == "angry", results[name]["probabilities"]
    assert sum(results[n]["emotion"] == truth[n] for n in results) >= 3, {n: r["emotion"] for n, r in results.items()}


def test_silence_says_no_speech_instead_of_guessing():
    result = voice.analyze_audio(wav_bytes(np.zeros(2 * 16000, dtype=np.float32)))
    assert result["speech"] is False
    assert result["emotion"] is None and result["confidence"] is None
    assert set(result["probabilities"].values()) == {0.0}
    assert all(w["emotion"] is None for w in result["windows"])
    assert result["duration"] == pytest.approx(2.0)


def test_noise_is_not_speech_but_noisy_speech_is():
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 0.2, 4 * 16000).astype(np.float32)
    assert voice.analyze_audio(noise)["speech"] is False
    speech = signal_of("03-01-05-02-01-01-18.flac")
    start, end = audio.trim_bounds(speech)
    noisy = speech + rng.normal(0, np.sqrt(np.mean(speech[start:end] ** 2) / 100), len(speech)).astype(np.float32)
    result = voice.analyze_audio(noisy)
    assert result["speech"] is True and result["emotion"] in VOICE_EMOTIONS


def test_long_recording_is_scored_in_3s_windows():
    parts = [signal_of(n) for n in ("03-01-05-02-01-01-18.flac", "03-01-03-02-01-01-18.flac", "03-01-04-02-01-01-19.flac")]
    long = np.concatenate(parts)
    assert 10.5 < len(long) / 16000 < 12.5
    result = voice.analyze_audio(long)
    start, end = audio.trim_bounds(long)  # relative to the loudest frame of the whole recording
    assert start == audio.trim_bounds(parts[0])[0] and (end - start) / 16000 > 9
    expected = 1 + int(np.ceil(((end - start) / 16000 - 3.0) / 1.5))
    windows = result["windows"]
    assert len(windows) == expected >= 5
    assert windows[0]["start"] == pytest.approx(start / 16000, abs=1e-3)
    assert windows[-1]["end"] == pytest.approx(end / 16000, abs=1e-3)
    assert all(w["end"] - w["start"] == pytest.approx(3.0, abs=1e-3) for w in windows)
    assert all(b["start"] - a["start"] == pytest.approx(1.5, abs=1e-3) for a, b in itertools.pairwise(windows[:-1]))
    assert result["speech"] is True and result["emotion"] in VOICE_EMOTIONS
    assert sum(w["emotion"] is not None for w in windows) >= expected - 1


def test_a_silent_stretch_inside_speech_gets_no_emotion():
    speech = signal_of("03-01-05-02-01-01-18.flac")
    long = np.concatenate([speech, np.zeros(8 * 16000, dtype=np.float32), speech])
    result = voice.analyze_audio(long)
    silent = [w for w in result["windows"] if w["start"] > len(speech) / 16000 + 0.5 and w["end"] < len(speech) / 16000 + 7.5]
    assert silent and all(w["emotion"] is None and w["confidence"] is None for w in silent)
    assert result["speech"] is True and result["emotion"] is not None


def test_unusable_input_raises_invalid_media(face_photo):
    for data in (b"", face_photo, b"OggS" + b"\x00" * 100, np.zeros(0, dtype=np.float32)):
        with pytest.raises(InvalidMedia):
            voice.analyze_audio(data)
    with pytest.raises(InvalidMedia, match="limit"):
        voice.analyze_audio(SPEECH.joinpath("03-01-03-02-01-01-18.flac").read_bytes(), max_seconds=2)
