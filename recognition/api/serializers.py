"""Input validation and output shapes of the REST API (no logic: services and selectors act).

Why one module over 400 lines: declarations only, most of them describing the stored result for
the OpenAPI schema; one file is where a reader compares a response with its schema.

The ``result`` of an analysis is stored by the services in exactly the shape the API returns;
the ``*Result`` serializers below only describe that shape for the OpenAPI schema.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth import authenticate
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from recognition.analyses.models import Analysis
from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS

# ----------------------------------------------------------------------------- errors


class ErrorDetailSerializer(serializers.Serializer):
    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    code = serializers.CharField(
        help_text="Stable machine-readable code, e.g. `too_large`, `not_authenticated`."
    )
    message = serializers.CharField(help_text="A sentence for a person.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: field name -> messages.",
    )


class ErrorSerializer(serializers.Serializer):
    """The body of every error response."""

    error = ErrorDetailSerializer()


# ----------------------------------------------------------------------------- tokens


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField(write_only=True)
    password = serializers.CharField(
        write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )
    otp = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Accounts with two-factor sign-in only: a code from the authenticator app or "
        "an unused recovery code (single use). Without it such an account gets 400 `otp_required`; "
        "a wrong or used code is 400 `otp_invalid`.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = authenticate(
            request=self.context.get("request"),
            username=attrs["username"],
            password=attrs["password"],
        )
        if user is None:  # also inactive users (ModelBackend)
            raise serializers.ValidationError(
                "Unable to sign in with these credentials.", code="invalid_credentials"
            )
        attrs["user"] = user
        return attrs


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="Send it as `Authorization: Token <token>`."
    )


# ----------------------------------------------------------------------------- query fields
# Query values read exactly as the schema types them. DRF's own fields are lenient where a
# schema-driven client is not: "5_0" or "5.0" as an integer, "2026-1-1\n" as a date, "yes" or
# "on" as a boolean, "happy\n" trimmed to a valid word. Each of these answers 400 here.


class QueryIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if not (isinstance(data, int) or re.fullmatch(r"-?[0-9]+", str(data))):
            self.fail("invalid")
        return super().to_internal_value(data)


class QueryFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        number = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
        if not (isinstance(data, (int, float)) or re.fullmatch(number, str(data))):
            self.fail("invalid")
        return super().to_internal_value(data)


class QueryDateField(serializers.DateField):
    def to_internal_value(self, value: Any) -> Any:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", str(value)):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class QueryBooleanField(serializers.BooleanField):
    """``true``/``false`` (any case) or ``1``/``0``: how a URL spells a boolean."""

    SPELLINGS: ClassVar[dict[str, bool]] = {
        "true": True,
        "1": True,
        "false": False,
        "0": False,
    }

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        value = self.SPELLINGS.get(str(data).lower())
        if value is None:
            self.fail("invalid", input=data)
        return value


# ----------------------------------------------------------------------------- uploads and filters


@extend_schema_field({"type": "string", "format": "binary", "minLength": 1})
class UploadFileField(serializers.FileField):
    """An uploaded file, documented as non-empty (an empty one answers 400)."""


class UploadSerializer(serializers.Serializer):
    file = UploadFileField(
        help_text="A photo (JPEG, PNG, WebP, HEIC...), a voice recording (WAV, FLAC, MP3, OGG...) or a "
        "video. The type is read from the file's bytes, not its name."
    )


class UploadQuerySerializer(serializers.Serializer):
    wait = QueryFloatField(
        required=False,
        default=0.0,
        min_value=0.0,
        help_text="Seconds to wait for the result before answering (capped by the server's API_MAX_WAIT_SECONDS, "
        "30 by default). 201 when finished in time, else 202.",
    )

    def validate_wait(self, value: float) -> float:
        return min(value, float(getattr(settings, "API_MAX_WAIT_SECONDS", 30.0)))


class AnalysisFilterSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Analysis.Kind.choices, required=False)
    emotion = serializers.RegexField(
        r"^[a-z]+$",
        required=False,
        max_length=16,
        trim_whitespace=False,
        help_text="Headline emotion as the models name it (lower case), e.g. `happy`.",
    )
    date_from = QueryDateField(
        required=False, help_text="Created on or after this day (YYYY-MM-DD, UTC)."
    )
    date_to = QueryDateField(
        required=False,
        help_text="Created on or before this day (YYYY-MM-DD, UTC). Not before `date_from`: "
        "such a pair answers 400.",
    )

    def validate_emotion(self, value: str) -> str:
        # The pattern's "$" would also accept a trailing newline.
        if not re.fullmatch(r"[a-z]+", value):
            raise serializers.ValidationError("Lower-case letters only, e.g. happy.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (
            attrs.get("date_from")
            and attrs.get("date_to")
            and attrs["date_from"] > attrs["date_to"]
        ):
            raise serializers.ValidationError(
                {"date_to": ["Must not be before date_from."]}
            )
        return attrs


class PageQuerySerializer(serializers.Serializer):
    """The list's paging parameters, validated as the schema states (not silently defaulted)."""

    page = QueryIntegerField(
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        help_text="Page number, from 1. A page past the last one answers 404.",
    )
    page_size = QueryIntegerField(
        required=False,
        min_value=1,
        max_value=100,
        help_text="Analyses per page, 1 to 100 (default 20).",
    )


class MediaQuerySerializer(serializers.Serializer):
    download = QueryBooleanField(
        required=False,
        default=False,
        help_text="`true`: sent as an attachment (`Content-Disposition: attachment`).",
    )


# ----------------------------------------------------------------------------- results (schema only)


def probabilities_field(help_text: str) -> serializers.DictField:
    return serializers.DictField(child=serializers.FloatField(), help_text=help_text)


class FaceResultSerializer(serializers.Serializer):
    box = serializers.ListField(
        child=serializers.IntegerField(),
        min_length=4,
        max_length=4,
        help_text="[x, y, width, height] in pixels.",
    )
    too_small = serializers.BooleanField(
        required=False,
        help_text="True when the face is under 32 pixels wide and high in the image analysed: too small "
        "to judge. Its emotion and probabilities are still given, but pages show no label for it and it "
        "never makes the headline.",
    )
    emotion = serializers.CharField()
    confidence = serializers.FloatField()
    probabilities = probabilities_field("The 7 face labels -> probability (sums to 1).")


class VoiceWindowSerializer(serializers.Serializer):
    start = serializers.FloatField(help_text="Seconds.")
    end = serializers.FloatField(help_text="Seconds.")
    emotion = serializers.CharField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    probabilities = probabilities_field("The 8 voice labels -> probability.")


class VoiceResultSerializer(serializers.Serializer):
    emotion = serializers.CharField(
        allow_null=True, help_text="null when no speech was heard."
    )
    confidence = serializers.FloatField(allow_null=True)
    probabilities = probabilities_field("The 8 voice labels -> probability.")
    speech = serializers.BooleanField(required=False)
    duration = serializers.FloatField(required=False, help_text="Seconds.")
    windows = VoiceWindowSerializer(many=True)


class ResultSerializer(serializers.Serializer):
    """What the models found; keys appear where they apply to the kind of media."""

    width = serializers.IntegerField(required=False)
    height = serializers.IntegerField(required=False)
    faces = FaceResultSerializer(many=True, required=False)
    voice = VoiceResultSerializer(
        required=False,
        allow_null=True,
        help_text="Video: null without a usable sound track.",
    )
    timeline = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="Video: results over time, one entry per sample.",
    )
    fused = serializers.DictField(
        required=False, help_text="Video: face and voice evidence combined."
    )


@extend_schema_field(ResultSerializer)
class ResultField(serializers.JSONField):
    """The stored result JSON, documented as ``ResultSerializer``."""


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
        },
    }
)
class ModelsUsedField(serializers.JSONField):
    """Task -> {name, version} of the models that produced the result."""


# ----------------------------------------------------------------------------- analyses


def api_result(analysis: Analysis) -> dict[str, Any]:
    """The stored result in the API's shape. Audio results are stored as the voice analysis
    itself; the API nests them under ``voice`` (as a video's sound track is) so clients read
    ``result.faces`` and ``result.voice`` whatever the kind."""
    result = analysis.result or {}
    if (
        analysis.kind == Analysis.Kind.AUDIO
        and "voice" not in result
        and "windows" in result
    ):
        return {"voice": result}
    return result


class AnalysisSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This analysis in the API.")
    media_url = serializers.SerializerMethodField(
        help_text="The uploaded file (owner only)."
    )
    models = ModelsUsedField(source="models_used", read_only=True)
    result = ResultField(read_only=True)

    class Meta:
        model = Analysis
        fields = (
            "id", "url", "kind", "status", "progress", "error", "original_name", "content_type", "size",
            "emotion", "confidence", "face_count", "created", "started", "finished", "models", "result",
            "timings", "media_url",
        )  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance: Analysis) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["result"] = api_result(instance)
        return data

    def _absolute(self, name: str, obj: Analysis) -> str:
        path = reverse(name, kwargs={"pk": obj.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_url(self, obj: Analysis) -> str:
        return self._absolute("api:analysis-detail", obj)

    def get_media_url(self, obj: Analysis) -> str:
        return self._absolute("api:analysis-media", obj)


# ----------------------------------------------------------------------------- corrections

ALL_EMOTIONS = sorted({*FACE_EMOTIONS, *VOICE_EMOTIONS})


class StrictBooleanField(serializers.BooleanField):
    """A JSON ``true`` or ``false`` only (DRF would also take "yes", "on", 1...)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class CorrectionModelSerializer(serializers.Serializer):
    name = serializers.CharField(allow_blank=True)
    version = serializers.CharField(allow_blank=True)


class CorrectionRefSerializer(serializers.Serializer):
    """Where the item is; the keys that apply to its kind."""

    box = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="Faces: [x, y, width, height] in the analysed pixels."
    )
    track = serializers.IntegerField(required=False, help_text="Video: the person's track id.")
    t = serializers.FloatField(required=False, allow_null=True, help_text="Video: the sampled frame (s) the box is from.")
    first = serializers.FloatField(required=False, allow_null=True, help_text="Video: first seen (s).")
    last = serializers.FloatField(required=False, allow_null=True, help_text="Video: last seen (s).")
    start = serializers.FloatField(required=False, allow_null=True, help_text="Recording, window, session: start (s).")
    end = serializers.FloatField(required=False, allow_null=True, help_text="Recording, window, session: end (s).")


class CorrectionItemSerializer(serializers.Serializer):
    """One correctable item of an analysis and its correction, if any (``label`` null: none)."""

    item = serializers.CharField(
        help_text="`face-<n>` (photo, n from 1), `track-<id>` (video), `recording` and `window-<n>` "
        "(recording), `session` (live)."
    )
    task = serializers.ChoiceField(choices=["face", "voice"], help_text="Which model's classes apply.")
    title = serializers.CharField(help_text="How the result page names it, e.g. `Face 1`.")
    ref = CorrectionRefSerializer()
    predicted = serializers.CharField(allow_null=True, help_text="What the model said (null: no speech).")
    confidence = serializers.FloatField(allow_null=True)
    classes = serializers.ListField(child=serializers.CharField(), help_text="The labels this item may be given.")
    model = CorrectionModelSerializer(help_text="The model that made the prediction.")
    label = serializers.CharField(allow_null=True, help_text="Your correction (the true emotion); null when none.")
    agreed = serializers.BooleanField(allow_null=True, help_text="Whether the model's prediction is your label.")
    updated = serializers.DateTimeField(allow_null=True)


class CorrectionSetSerializer(serializers.Serializer):
    label = serializers.ChoiceField(
        choices=ALL_EMOTIONS,
        help_text="The true emotion. It must be one of the item's `classes`: a label only the other model has "
        "(e.g. `fear` for a voice item, whose model says `fearful`) answers 409.",
    )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and "label" in data and not isinstance(data["label"], str):
            raise serializers.ValidationError({"label": ["Must be a string."]})
        return super().to_internal_value(data)


class CorrectionSerializer(serializers.Serializer):
    """One of your corrections, for the list of all of them."""

    analysis = serializers.IntegerField()
    item = serializers.CharField()
    task = serializers.ChoiceField(choices=["face", "voice"])
    label = serializers.CharField()
    predicted = serializers.CharField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)
    agreed = serializers.BooleanField()
    model = CorrectionModelSerializer()
    ref = CorrectionRefSerializer()
    kind = serializers.ChoiceField(choices=Analysis.Kind.choices)
    original_name = serializers.CharField(allow_blank=True)
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()


class SharingSerializer(serializers.Serializer):
    share = StrictBooleanField(
        help_text="true: your corrections go into the shared pool an administrator exports for training. "
        "Off by default; turning it off takes them out of every later export."
    )


class AgreementCountSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="Corrections.")
    agreed = serializers.IntegerField(help_text="Of them, where the model said your label.")
    accuracy = serializers.FloatField(allow_null=True, help_text="agreed / n; null when n is 0.")


class AgreementClassSerializer(AgreementCountSerializer):
    task = serializers.CharField()
    label = serializers.CharField(help_text="Your label (the true class).")


class AgreementModelSerializer(AgreementCountSerializer):
    task = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    version = serializers.CharField(allow_blank=True)
    per_class = serializers.DictField(child=AgreementCountSerializer(), help_text="True class -> counts.")


class AgreementSerializer(AgreementCountSerializer):
    """The served models' agreement with your corrections (their accuracy on your data)."""

    by_task = serializers.DictField(child=AgreementCountSerializer(), help_text="`face` / `voice` -> counts.")
    per_class = AgreementClassSerializer(many=True)
    by_model = AgreementModelSerializer(many=True, help_text="Per model version: retrained models show up apart.")


# ----------------------------------------------------------------------------- stats


class DayEmotionsSerializer(serializers.Serializer):
    date = serializers.DateField()
    emotions = serializers.DictField(
        child=serializers.IntegerField(), help_text="Emotion -> count."
    )


class StatsSerializer(serializers.Serializer):
    """The dashboard's numbers (``selectors.stats_for``); documents the response."""

    total = serializers.IntegerField(help_text="All your analyses.")
    by_status = serializers.DictField(child=serializers.IntegerField())
    by_kind = serializers.DictField(child=serializers.IntegerField())
    emotions = serializers.DictField(
        child=serializers.IntegerField(), help_text="Headline emotion -> count."
    )
    by_modality = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="Kind -> emotion -> count.",
    )
    over_time = DayEmotionsSerializer(many=True)
    faces = serializers.IntegerField(help_text="Faces found in finished analyses.")
    average_confidence = serializers.FloatField(allow_null=True)
    corrections = AgreementSerializer(help_text="The served models' agreement with your corrections.")


# ----------------------------------------------------------------------------- models


class ModelCardSerializer(serializers.Serializer):
    """A served model as its card describes it (models/<name>.json)."""

    task = serializers.CharField(help_text="`face` or `voice`.")
    name = serializers.CharField()
    version = serializers.CharField()
    architecture = serializers.CharField(allow_null=True)
    classes = serializers.ListField(child=serializers.CharField())
    accuracy = serializers.FloatField(
        allow_null=True, help_text="Held-out test accuracy from the card."
    )
    ece = serializers.FloatField(
        allow_null=True, help_text="Expected calibration error on the test set."
    )
    test_size = serializers.IntegerField(
        allow_null=True, help_text="Number of test examples."
    )
    metrics_split = serializers.CharField(
        allow_null=True,
        help_text="Which evaluation the numbers come from: `test` (held out) where the card has it.",
    )
    test_data = serializers.CharField(allow_null=True)
    parameters = serializers.IntegerField(allow_null=True)
    date = serializers.CharField(allow_null=True)
    available = serializers.BooleanField(
        help_text="false when the card or model file cannot be read."
    )
    detail = serializers.CharField(
        allow_blank=True, help_text="Why the model is unavailable, if it is."
    )


# ----------------------------------------------------------------------------- live sessions
# Described here for the schema; every field is checked by services.device_summary (one set of
# rules, with the caps), which answers 400 with the first fault.


class DeviceModelSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The served live face model's name (its card; `GET /live/models.json`); any other is a 400.")
    version = serializers.CharField(help_text="Its version, as on the card; any other is a 400.")


class DeviceFaceSerializer(serializers.Serializer):
    probabilities = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=1), min_length=7, max_length=7,
        help_text="Seven probabilities summing to 1 (within 0.01), in the card's class order: "
        + ", ".join(FACE_EMOTIONS) + ".",
    )
    box = serializers.ListField(
        child=serializers.FloatField(min_value=0, max_value=100_000), min_length=4, max_length=4, required=False,
        help_text="[x, y, width, height] in frame pixels (optional).",
    )
    too_small = serializers.BooleanField(required=False, help_text="Counted as a face, not read.")


class DeviceSampleSerializer(serializers.Serializer):
    t = serializers.FloatField(min_value=0, max_value=4 * 3600, help_text="Seconds from the start; never decreasing, at most `duration`.")
    faces = serializers.ListField(child=DeviceFaceSerializer(), max_length=16, help_text="The faces of that frame.")


class DeviceSessionSerializer(serializers.Serializer):
    model = DeviceModelSerializer()
    duration = serializers.FloatField(min_value=0, max_value=4 * 3600, help_text="Seconds the session lasted.")
    started = serializers.DateTimeField(required=False, help_text="When it started (ISO 8601 with offset), not in the future.")
    samples = serializers.ListField(child=DeviceSampleSerializer(), max_length=7200, help_text="The frames (20000 faces in all at most).")


class SavedLiveSessionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField(help_text="The saved session's page.")
    api_url = serializers.CharField(help_text="The saved session in the API.")
    summary = serializers.JSONField(help_text="The stored summary (duration, frames, emotion, distribution, timeline).")
