"""Audio: bytes in any common format -> 16 kHz mono float32, and the one place where a voice
signal becomes model input (trimming, normalisation, features, windows, the speech rule).

Training (``training/voice.py``) and serving (``voice.py``) import the functions below, so a clip
is decoded, trimmed, normalised and featurised in exactly one way.

Decoders, chosen by measurement (benchmarks/README.md, a 3.8 s speech clip on this machine):
libsndfile (``soundfile``) reads WAV 1.6 ms, FLAC 1.6 ms, Ogg/Vorbis 2.9 ms, MP3 2.3 ms, but
cannot open M4A/AAC or WEBM; PyAV (FFmpeg inside the wheel, no system ffmpeg needed) reads all
of them (WAV 29 ms first call, FLAC 3.4, Ogg 7.5, Opus 13.8, MP3 6.4, M4A 5.2, WEBM 14.6 ms).
So: soundfile for WAV/FLAC/Ogg Vorbis/MP3/AIFF, PyAV for Ogg Opus (twice as fast there),
MP4/M4A, ADTS AAC, WEBM/Matroska, and as the fallback whenever libsndfile refuses a file (e.g.
WAV with an exotic codec). Both paths downmix
to mono and resample with soxr (the resampler librosa uses), so a format only changes the codec.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import config
from .errors import InvalidMedia

SAMPLE_RATE = 16_000
DEFAULT_MAX_SECONDS = 300.0

# Framing shared by trimming, the speech rule and log-mel features: 25 ms windows, 10 ms hop.
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
N_MELS = 64
FMIN, FMAX = 50.0, 8000.0
N_MFCC = 40
LOG_FLOOR = 1e-6

# Scoring windows for long clips: 3 s, hop 1.5 s. A clip up to 3 s is one (padded) window.
WINDOW_SECONDS = 3.0
WINDOW_HOP_SECONDS = 1.5
WINDOW_FRAMES = 1 + int(WINDOW_SECONDS * SAMPLE_RATE) // HOP_LENGTH  # 301 log-mel frames

# Trimming: drop leading/trailing frames more than TRIM_TOP_DB below the loudest frame.
TRIM_TOP_DB = 40.0

# The speech rule (see ``voiced_mask``): a 25 ms frame is voiced when it is loud enough
# (>= -55 dBFS and within 40 dB of the loudest frame) AND tonal (spectral flatness <= 0.3;
# white noise is about 0.5-0.6, voiced speech well under 0.1). A window holds speech when at
# least MIN_VOICED_SECONDS of its frames are voiced.
VOICED_MIN_DBFS = -55.0
VOICED_REL_DB = 40.0
VOICED_MAX_FLATNESS = 0.3
MIN_VOICED_SECONDS = 0.25


@dataclass(frozen=True)
class Format:
    name: str
    decoder: str  # "soundfile" or "av"


# ---------------------------------------------------------------------------------------------
# Sniffing and decoding


_NOT_AUDIO = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a program"),
    (b"<", "text or HTML"),
    (b"{", "text (JSON)"),
)


def sniff_audio_format(data: bytes) -> Format | None:
    """Container from magic bytes (never from a file name); None when not a known audio format."""
    head = data[:64]
    if len(head) < 4:
        return None
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return Format("wav", "soundfile")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return Format("aiff", "soundfile")
    if head[:4] == b"fLaC":
        return Format("flac", "soundfile")
    if head[:4] == b"OggS":
        # Opus in Ogg: PyAV decodes it about twice as fast as libsndfile (benchmarks/README.md).
        return Format("ogg", "av" if b"OpusHead" in head else "soundfile")
    if head[4:8] == b"ftyp":
        return Format("mp4", "av")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return Format("webm", "av")
    if head[:3] == b"ID3":
        return Format("mp3", "soundfile")
    if head[0] == 0xFF and (head[1] & 0xF6) == 0xF0:  # ADTS: sync 0xFFF, layer 00
        return Format("aac", "av")
    if head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0:  # MPEG audio frame
        return Format("mp3", "soundfile")
    return None


def _describe_not_audio(data: bytes) -> str:
    for magic, what in _NOT_AUDIO:
        if data.startswith(magic):
            return f"This file is {what}, not an audio recording."
    return "This file is not a supported audio recording (WAV, MP3, M4A/AAC, OGG/Opus, FLAC or WEBM)."


def default_max_seconds() -> float:
    """``config.max_audio_seconds`` (the MAX_AUDIO_SECONDS setting in the web layer; 300 s)."""
    return float(config.get().max_audio_seconds)


def _too_long(seconds: float, limit: float) -> InvalidMedia:
    return InvalidMedia(f"The recording is {seconds:.0f} s long; the limit is {limit:.0f} s.")


def _decode_soundfile(data: bytes, max_seconds: float) -> tuple[np.ndarray, int]:
    import soundfile as sf

    with sf.SoundFile(io.BytesIO(data)) as fh:
        rate = int(fh.samplerate)
        if rate <= 0:
            raise InvalidMedia("The recording states no sample rate.")
        stated = fh.frames / rate if fh.frames and fh.frames > 0 else None
        if stated is not None and stated > max_seconds + 0.5:
            raise _too_long(stated, max_seconds)
        limit = int((max_seconds + 0.5) * rate)
        signal = fh.read(frames=limit + 1, dtype="float32", always_2d=True)
    if len(signal) > limit:
        raise _too_long(len(signal) / rate, max_seconds)
    return signal.mean(axis=1), rate


def _decode_av(data: bytes, max_seconds: float) -> tuple[np.ndarray, int]:
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except Exception as exc:  # FFmpeg raises many error types for garbage
        raise InvalidMedia("The audio file could not be read; it may be corrupt.") from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise InvalidMedia("The file holds no audio track.")
        stream = streams[0]
        stated = None
        if stream.duration and stream.time_base:
            stated = float(stream.duration * stream.time_base)
        elif container.duration:
            stated = container.duration / 1_000_000
        if stated is not None and stated > max_seconds + 0.5:
            raise _too_long(stated, max_seconds)
        rate = int(stream.rate or stream.codec_context.sample_rate or 0)
        if rate <= 0:
            raise InvalidMedia("The recording states no sample rate.")
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        limit = int((max_seconds + 0.5) * rate)
        chunks: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray()[0]
                    chunks.append(chunk)
                    total += len(chunk)
                if total > limit:
                    raise _too_long(total / rate, max_seconds)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray()[0])
        except InvalidMedia:
            raise
        except Exception as exc:
            if not chunks:
                raise InvalidMedia("The audio file could not be decoded; it may be corrupt.") from exc
            # A truncated tail: keep what decoded (browsers' recordings are often cut short).
    signal = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    return signal, rate


def resample(signal: np.ndarray, rate: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    if rate == sr or len(signal) == 0:
        return signal.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(signal.astype(np.float32, copy=False), rate, sr, quality="HQ").astype(np.float32, copy=False)


def decode_audio(data: bytes, *, sr: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Bytes of WAV/MP3/M4A/AAC/OGG(Vorbis, Opus)/FLAC/WEBM/AIFF -> float32 mono at ``sr``.

    Raises InvalidMedia for empty, non-audio, corrupt, silent-length or too-long input; a stated
    duration beyond ``max_seconds`` (default: settings.MAX_AUDIO_SECONDS) is refused before
    decoding, and decoding stops as soon as the limit is passed when nothing is stated.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidMedia("Expected the bytes of an audio file.")
    data = bytes(data)
    if not data:
        raise InvalidMedia("The audio file is empty.")
    limit = float(max_seconds if max_seconds is not None else default_max_seconds())
    fmt = sniff_audio_format(data)
    if fmt is None:
        raise InvalidMedia(_describe_not_audio(data))
    if fmt.decoder == "soundfile":
        try:
            signal, rate = _decode_soundfile(data, limit)
        except InvalidMedia:
            raise
        except (RuntimeError, ValueError, OSError, EOFError):  # libsndfile refuses some codecs (WAV GSM/ADPCM): FFmpeg can
            signal, rate = _decode_av(data, limit)
    else:
        signal, rate = _decode_av(data, limit)
    if len(signal) == 0:
        raise InvalidMedia("The recording contains no audio.")
    signal = np.nan_to_num(signal.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(resample(signal, rate, sr))


def as_signal(data: bytes | np.ndarray, *, max_seconds: float | None = None) -> np.ndarray:
    """Bytes (decoded) or an already-decoded float mono 16 kHz array -> float32 signal."""
    if isinstance(data, np.ndarray):
        signal = np.asarray(data, dtype=np.float32)
        if signal.ndim == 2:  # (samples, channels)
            signal = signal.mean(axis=1)
        if signal.ndim != 1 or len(signal) == 0:
            raise InvalidMedia("Expected a non-empty mono audio signal.")
        limit = float(max_seconds if max_seconds is not None else default_max_seconds())
        if len(signal) > (limit + 0.5) * SAMPLE_RATE:
            raise _too_long(len(signal) / SAMPLE_RATE, limit)
        return np.nan_to_num(signal, nan=0.0, posinf=0.0, neginf=0.0)
    return decode_audio(data, max_seconds=max_seconds)


# ---------------------------------------------------------------------------------------------
# Preprocessing shared by training and serving


def frame_signal(signal: np.ndarray, frame: int = WIN_LENGTH, hop: int = HOP_LENGTH) -> np.ndarray:
    """(n_frames, frame) view, the last frame zero-padded; at least one frame."""
    n = max(1, 1 + int(np.ceil(max(0, len(signal) - frame) / hop)))
    padded = np.zeros((n - 1) * hop + frame, dtype=np.float32)
    padded[: len(signal)] = signal[: len(padded)]
    return np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop]


def frame_db(signal: np.ndarray) -> np.ndarray:
    """RMS level of each 25 ms frame (10 ms hop) in dBFS."""
    frames = frame_signal(signal)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def trim_bounds(signal: np.ndarray, top_db: float = TRIM_TOP_DB) -> tuple[int, int]:
    """Sample range [start, end) after dropping leading/trailing frames ``top_db`` below the peak frame."""
    if len(signal) == 0:
        return 0, 0
    level = frame_db(signal)
    keep = np.flatnonzero(level >= level.max() - top_db)
    start = int(keep[0]) * HOP_LENGTH
    end = min(len(signal), int(keep[-1]) * HOP_LENGTH + WIN_LENGTH)
    return start, end


def trim(signal: np.ndarray) -> np.ndarray:
    start, end = trim_bounds(signal)
    return signal[start:end]


def peak_normalise(signal: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Scale so the largest |sample| is ``peak``; digital silence stays silence."""
    top = float(np.max(np.abs(signal))) if len(signal) else 0.0
    if top < 1e-8:
        return signal.astype(np.float32, copy=True)
    return (signal * (peak / top)).astype(np.float32)


def voiced_mask(signal: np.ndarray) -> np.ndarray:
    """Per 10 ms frame: loud enough and tonal (the speech rule documented at the top)."""
    frames = frame_signal(signal)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-10))
    loud = (level >= VOICED_MIN_DBFS) & (level >= level.max() - VOICED_REL_DB)
    power = _power_spectrum(frames * np.hanning(frames.shape[1]).astype(np.float32), N_FFT) + 1e-12
    band = power[:, 2 : N_FFT // 2 * 4000 // (SAMPLE_RATE // 2)]  # 62 Hz - 4 kHz, where voicing lives
    flatness = np.exp(np.mean(np.log(band), axis=1)) / np.mean(band, axis=1)
    return loud & (flatness <= VOICED_MAX_FLATNESS)


def has_speech(voiced: np.ndarray | int) -> bool:
    """A voiced-frame mask (or a count of voiced frames) holds speech: >= MIN_VOICED_SECONDS."""
    return bool(int(np.sum(voiced)) * HOP_LENGTH / SAMPLE_RATE >= MIN_VOICED_SECONDS)


def _power_spectrum(frames: np.ndarray, n_fft: int) -> np.ndarray:
    """|rfft|^2 per row in float32 (scipy keeps float32: about 5x faster than numpy's float64)."""
    from scipy.fft import rfft

    z = rfft(frames.astype(np.float32, copy=False), n=n_fft, axis=1)
    return (z.real**2 + z.imag**2).astype(np.float32, copy=False)


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX).astype(np.float32)


@lru_cache(maxsize=1)
def _sparse_mel_filters():
    """The mel matrix is 97% zeros: a sparse product takes 0.1 ms where multithreaded BLAS on
    this small matrix takes 3-12 ms on a busy 2-core machine."""
    from scipy.sparse import csr_matrix

    return csr_matrix(mel_filters())


@lru_cache(maxsize=1)
def _stft_window() -> np.ndarray:
    from scipy.signal import get_window

    window = np.zeros(N_FFT, dtype=np.float32)
    offset = (N_FFT - WIN_LENGTH) // 2
    window[offset : offset + WIN_LENGTH] = get_window("hann", WIN_LENGTH)  # periodic, as librosa
    return window


def log_mel(signal: np.ndarray) -> np.ndarray:
    """(frames, N_MELS) log mel power, 25 ms Hann windows every 10 ms, centred (reflect padding)."""
    signal = np.asarray(signal, dtype=np.float32)
    pad = N_FFT // 2
    if len(signal) <= pad:
        signal = np.pad(signal, (0, pad + 1 - len(signal)))
    padded = np.pad(signal, pad, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    spectrum = _power_spectrum(frames * _stft_window(), N_FFT)
    mel = np.ascontiguousarray((_sparse_mel_filters() @ spectrum.T).T)
    return np.log(mel + LOG_FLOOR).astype(np.float32)


def mfcc_mean(signal: np.ndarray) -> np.ndarray:
    """(40,) mean MFCC over time: the original baseline's feature (librosa defaults)."""
    import librosa

    return librosa.feature.mfcc(y=np.asarray(signal, dtype=np.float32), sr=SAMPLE_RATE, n_mfcc=N_MFCC).mean(axis=1).astype(np.float32)


def fit_frames(features: np.ndarray, n_frames: int = WINDOW_FRAMES, offset: int | None = None) -> np.ndarray:
    """Crop or pad (with the log floor) a (frames, bands) array to ``n_frames``.

    ``offset``: where the clip starts (padding) or where the crop starts; None centres it.
    Training passes random offsets (time-shift augmentation), serving centres.
    """
    frames = len(features)
    if frames >= n_frames:
        start = (frames - n_frames) // 2 if offset is None else int(np.clip(offset, 0, frames - n_frames))
        return features[start : start + n_frames]
    out = np.full((n_frames, features.shape[1]), np.log(LOG_FLOOR), dtype=np.float32)
    start = (n_frames - frames) // 2 if offset is None else int(np.clip(offset, 0, n_frames - frames))
    out[start : start + frames] = features
    return out


FEATURES = ("mfcc_mean", "log_mel")


def clip_features(signal: np.ndarray, kind: str) -> np.ndarray:
    """A trimmed clip or window -> peak-normalised features of ``kind`` (un-fitted for log_mel)."""
    signal = peak_normalise(signal)
    if kind == "mfcc_mean":
        return mfcc_mean(signal)
    if kind == "log_mel":
        return log_mel(signal)
    raise ValueError(f"unknown feature kind {kind!r}; expected one of {FEATURES}")


def model_input(signal: np.ndarray, kind: str) -> np.ndarray:
    """What one window feeds the network: (40,) for mfcc_mean, (301, 64) centred for log_mel."""
    features = clip_features(signal, kind)
    return fit_frames(features) if kind == "log_mel" else features


def window_bounds(n_samples: int) -> list[tuple[int, int]]:
    """3 s windows every 1.5 s covering the signal; the last one ends at the end. One window for
    a clip up to 3 s. Count: 1 + ceil((duration - 3) / 1.5)."""
    size = int(WINDOW_SECONDS * SAMPLE_RATE)
    hop = int(WINDOW_HOP_SECONDS * SAMPLE_RATE)
    if n_samples <= size:
        return [(0, n_samples)]
    count = 1 + int(np.ceil((n_samples - size) / hop))
    starts = [min(i * hop, n_samples - size) for i in range(count)]
    return [(s, s + size) for s in starts]
