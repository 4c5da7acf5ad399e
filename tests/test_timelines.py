"""recognition/timelines.py and the recording result page: voice windows are drawn as spans
over the clip's real duration, from 0 to its end; a clip with one window is one span."""

from __future__ import annotations

import json
import re
from itertools import pairwise

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from recognition.analyses import timelines
from recognition.analyses.models import Analysis
from recognition.inference import voice
from tests.conftest import SPEECH
from tests.media_convert import read_pcm

pytestmark = pytest.mark.django_db
SHORT_CLIP = SPEECH / "03-01-05-02-02-01-20.flac"  # 4.4 s, one 3 s window of speech


@pytest.fixture(scope="module")
def short_result() -> dict:
    return voice.analyze_audio(SHORT_CLIP.read_bytes())


@pytest.fixture(scope="module")
def long_result() -> dict:
    clips = sorted(SPEECH.glob("*.flac"))[:3]
    joined = np.concatenate([read_pcm(p)[0] for p in clips])
    return voice.analyze_audio(joined.astype(np.float32))


def test_a_clip_with_one_window_is_one_span_from_0_to_its_end(short_result):
    assert short_result["duration"] == pytest.approx(4.4, abs=0.05)
    assert len(short_result["windows"]) == 1
    window = short_result["windows"][0]
    assert window["start"] > 0.5 and window["end"] < short_result["duration"] - 0.5
    (span,) = timelines.voice_spans(short_result)
    assert (span["start"], span["end"]) == (0, short_result["duration"])
    assert (span["left"], span["width"]) == (0, 100)
    assert (
        span["emotion"] == window["emotion"]
        and span["probabilities"] == window["probabilities"]
    )
    assert (span["window_start"], span["window_end"]) == (
        window["start"],
        window["end"],
    )


def test_spans_cut_a_long_clip_without_gaps_or_overlaps(long_result):
    windows = long_result["windows"]
    spans = timelines.voice_spans(long_result)
    assert len(windows) > 3 and len(spans) == len(windows)
    assert spans[0]["start"] == 0 and spans[-1]["end"] == long_result["duration"]
    for before, after in pairwise(spans):
        assert before["end"] == after["start"] and before["start"] < before["end"]
    assert sum(s["width"] for s in spans) == pytest.approx(100, abs=0.01)
    for span, window in zip(
        spans, windows
    ):  # each window's centre lies in its own span
        assert span["start"] <= (window["start"] + window["end"]) / 2 <= span["end"]
        assert span["emotion"] == window["emotion"]


def test_nothing_to_draw_without_windows():
    assert timelines.voice_spans({"duration": 2.0, "windows": []}) == []
    assert timelines.voice_spans({}) == []


def test_the_result_page_charts_a_short_clip_over_its_whole_duration(
    alice_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(
            reverse("upload"),
            {"file": SimpleUploadedFile(SHORT_CLIP.name, SHORT_CLIP.read_bytes())},
        )
    analysis = Analysis.objects.get()
    assert analysis.status == "done", analysis.error
    html = alice_client.get(
        reverse("analysis-detail", args=[analysis.pk])
    ).content.decode()
    assert html.count('class="timeline-seg') == 1
    assert 'style="left: 0.000%; width: 100.000%"' in html
    assert 'id="timeline-chart"' in html and "vendor/chart.umd.min.js" in html
    assert "so the whole recording is one span" in html
    config = json.loads(
        re.search(
            r'<script id="analysis-config" type="application/json">(.*?)</script>',
            html,
            re.DOTALL,
        )[1]
    )
    (span,) = config["spans"]
    assert (span["start"], span["end"]) == (0, analysis.result["duration"])
