"""Forms for the upload and history pages (validation of query/form input only)."""

from __future__ import annotations

from django import forms

from recognition.analyses.models import Analysis
from recognition.inference.labels import FACE_EMOTIONS, VOICE_EMOTIONS

EMOTION_CHOICES = [("", "Any emotion")] + [
    (e, e) for e in sorted(set(FACE_EMOTIONS) | set(VOICE_EMOTIONS))
]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class UploadForm(forms.Form):
    """Only for rendering the no-JavaScript fallback; files are checked by the media service."""

    files = forms.FileField(
        widget=MultipleFileInput(
            attrs={"multiple": True, "accept": "image/*,audio/*,video/*,.heic,.heif"}
        ),
        label="Photos or recordings",
    )


class HistoryFilterForm(forms.Form):
    """Filters of the history list; invalid values are ignored rather than failing the page."""

    kind = forms.ChoiceField(
        required=False,
        choices=[("", "Any kind")] + list(Analysis.Kind.choices),
    )
    emotion = forms.ChoiceField(required=False, choices=EMOTION_CHOICES)
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def filters(self) -> dict:
        """Clean filter values for ``selectors.analyses_for`` (empty if the form is invalid)."""
        if not self.is_valid():
            return {
                k: v for k, v in self.cleaned_data.items() if v and k not in self.errors
            }
        return {k: v for k, v in self.cleaned_data.items() if v}


class DeleteAccountForm(forms.Form):
    """Deleting an account asks for the password again, and the second factor when it is on."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    code = forms.CharField(
        label="Code",
        required=False,
        max_length=64,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
    )

    def __init__(self, *args, two_factor: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if two_factor:
            self.fields["code"].required = True
        else:
            del self.fields["code"]
