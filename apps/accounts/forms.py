"""The account forms, with the widget classes the templates' Bootstrap layout expects."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model


class BootstrapWidgets:
    """Give every visible widget Bootstrap's ``form-control`` class.

    Django renders the ``id``, ``autocomplete``, ``required``, ``aria-invalid`` and
    ``aria-describedby`` attributes; only the class is ours, so templates can render a field
    with ``{{ field }}`` and keep all of them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if not field.widget.is_hidden:
                field.widget.attrs.setdefault("class", "form-control")


class SignUpForm(BootstrapWidgets, auth_forms.UserCreationForm):
    """A user name, an e-mail address (where a password-reset link goes) and a password."""

    email = forms.EmailField(
        label="E-mail address",
        help_text="Only used to send you a link if you forget your password.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    class Meta(auth_forms.UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(
                "An account with this e-mail address exists already; log in, or reset its "
                "password if you have forgotten it."
            )
        return email


def lockout_sentence() -> str:
    minutes = round(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    return (
        "There have been too many failed log-ins for this user name from your address, so "
        f"log-in is paused; try again in {minutes} minutes, or reset your password."
    )


class LoginForm(BootstrapWidgets, auth_forms.AuthenticationForm):
    def get_invalid_login_error(self) -> forms.ValidationError:
        """Say so when django-axes refused the attempt: "wrong password" would be untrue (even
        the right one is refused until the lockout ends) and would invite more guesses."""
        if getattr(self.request, "axes_locked_out", False):
            return forms.ValidationError(lockout_sentence(), code="locked_out")
        return super().get_invalid_login_error()


class PasswordChangeForm(BootstrapWidgets, auth_forms.PasswordChangeForm):
    pass


class PasswordResetForm(BootstrapWidgets, auth_forms.PasswordResetForm):
    pass


class SetPasswordForm(BootstrapWidgets, auth_forms.SetPasswordForm):
    pass


class ApiTokenForm(BootstrapWidgets, forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=100,
        help_text="What the token is for, so you know which one to revoke, e.g. “laptop”.",
    )
