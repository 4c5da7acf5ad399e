"""Forms of the account page and the two-factor pages (input checks only)."""

from __future__ import annotations

from django import forms

from recognition.accounts.models import Retention


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=64,
        help_text="The 6-digit code from your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}),
    )


class TotpCodeForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=16,
        help_text="The 6-digit code your authenticator app shows for emotionsite.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class RetentionForm(forms.Form):
    retention = forms.ChoiceField(label="Keep my uploads", choices=Retention.choices)
    retention_days = forms.IntegerField(
        label="Days (N)",
        min_value=1,
        max_value=3650,
        help_text="Counted from the upload. Used by the two 'after N days' choices.",
    )


class PasswordConfirmForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if self.user is None or not self.user.check_password(password):
            raise forms.ValidationError("The password is not correct.")
        return password
