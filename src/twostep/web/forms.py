"""Forms for the pages: they check the shape of what was typed; the services decide the rest.

Every text field is a Django CharField, so a NUL character or an over-long value is a field
error, never a database error. Django links each field's error list to the input through
`aria-describedby`.
"""

from __future__ import annotations

from django import forms
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from ..services.accounts import MAX_PASSWORD as PASSWORD_MAX  # the one limit, for every form and the API
from ..services.trusted_browsers import MAX_DAYS as REMEMBER_MAX_DAYS


class PlainInput:
    """An <input> written in Python, the same markup as Django's input.html and attrs.html.

    Django renders each widget through its template engine, which was a third of a sign-in
    page's rendering; the sign-in forms' text boxes are written directly instead.
    """

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        esc = conditional_escape
        parts = [f'<input type="{esc(widget["type"])}" name="{esc(widget["name"])}"']
        if widget["value"] is not None:
            parts.append(f' value="{esc(str(widget["value"]))}"')
        for key, item in widget["attrs"].items():
            if item is True:
                parts.append(f" {esc(key)}")
            elif item is not False:
                parts.append(f' {esc(key)}="{esc(str(item))}"')
        parts.append(">")
        return mark_safe("".join(parts))  # noqa: S308 — every part escaped above


class TextInput(PlainInput, forms.TextInput):
    pass


class PasswordInput(PlainInput, forms.PasswordInput):
    pass


class CodeInput(TextInput):
    """A one-time code's text box: like a password, what was typed is never sent back in a page."""

    def format_value(self, value):
        return None


def _password_field(label=None, *, autocomplete="current-password", required=True):
    return forms.CharField(
        label=label or _("Password"), max_length=PASSWORD_MAX, strip=False, required=required,
        widget=PasswordInput(attrs={"autocomplete": autocomplete}),
    )


class LoginForm(forms.Form):
    login = forms.CharField(
        label=_("Login"), max_length=150,
        widget=TextInput(attrs={"autocomplete": "username", "autocapitalize": "none",
                                      "spellcheck": "false", "autofocus": True}),
    )
    password = _password_field()


class AppCodeForm(forms.Form):
    """A six-digit code from the authenticator app (spaces allowed, as apps show them)."""

    code = forms.CharField(
        label=_("Code from your app"), max_length=64,
        help_text=_("Open your authenticator app and enter the 6-digit code it shows for this service."),
        widget=CodeInput(attrs={
            "inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9 ]*",
            "autocapitalize": "none", "spellcheck": "false", "class": "code-input",
        }),
    )

    def __init__(self, *args, autofocus=True, **kwargs):
        super().__init__(*args, **kwargs)
        # Up to "123 456" with a stray space; the server takes up to 64 and says what is wrong.
        self.fields["code"].widget.attrs["maxlength"] = "9"
        if autofocus:
            self.fields["code"].widget.attrs["autofocus"] = True


class BackupCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Backup code"), max_length=64,
        help_text=_("One of the codes you saved when you switched on two-factor authentication, "
                    "for example abcd-efgh-jkmn-pqrs. Each code works once."),
        widget=CodeInput(attrs={
            "autocomplete": "off", "autocapitalize": "none", "spellcheck": "false",
            "autofocus": True, "class": "code-input",
        }),
    )


class PasswordForm(forms.Form):
    """Re-authentication before a change; the password may be left out right after sign-in."""

    password = _password_field(_("Your password"), required=False)

    def __init__(self, *args, require_password=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.require_password = require_password
        self.fields["password"].required = require_password


class AddAppForm(PasswordForm):
    """Adding an authenticator app: a name to know it by, and the password unless just given."""

    name = forms.CharField(
        label=_("Name"), max_length=60, required=False,
        help_text=_("To tell your authenticators apart, for example “Pixel 8” or “Work tablet”."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    field_order = ["name", "password"]


class RenameForm(forms.Form):
    name = forms.CharField(label=_("New name"), max_length=60,
                           widget=forms.TextInput(attrs={"autocomplete": "off"}))


class DisableForm(forms.Form):
    password = _password_field(_("Your password"))
    code = forms.CharField(
        label=_("A current code from your app, or a backup code"), max_length=64,
        widget=CodeInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "none",
                                      "spellcheck": "false", "class": "code-input"}),
    )

    def __init__(self, *args, require_password=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password"].required = require_password  # left out once confirmed on the page


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Search by login or e-mail"), max_length=150, required=False,
                        widget=forms.TextInput(attrs={"type": "search"}))
    after = forms.CharField(max_length=150, required=False, widget=forms.HiddenInput)


class PolicyForm(forms.Form):
    """The account's whole policy on one form: saved together, all of it or none of it.

    The page always sends every field (an unticked box sends nothing, which reads as "off"), so
    what the admin sees after saving is exactly what they sent.
    """

    require_two_factor = forms.BooleanField(
        label=_("Require two-factor authentication for everyone in this account"), required=False,
        help_text=_("From the moment you save, everyone without an authenticator must set one up before "
                    "going on: people signed in now on their next page, everyone else when they sign in."),
    )
    require_two_factor_from = forms.DateField(
        label=_("Require two-factor authentication from (date)"), required=False,
        help_text=_("Until then people without it see a reminder; from then on they must set it up. "
                    "Leave empty for no deadline."),
        # ISO 8601 whatever the language: a date input shows and sends only YYYY-MM-DD.
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": _("Enter a date as YYYY-MM-DD, or leave it empty.")},
    )
    require_second_admin = forms.BooleanField(
        label=_("A second admin must approve switching two-factor authentication off or a one-time sign-in pass"),
        required=False,
    )
    # A NumberInput sends its value unlocalised ("30", never "30,0"), so it round-trips in every language.
    remember_browser_days = forms.IntegerField(
        label=_("Days a browser may skip the code after a full sign-in"), min_value=0, max_value=REMEMBER_MAX_DAYS,
        help_text=_("1 to 90 days; 0 switches the option off and forgets every remembered browser. "
                    "The password is always needed."),
        error_messages={"invalid": _("Remembering a browser lasts 1 to 90 days, or 0 to switch it off."),
                        "min_value": _("Remembering a browser lasts 1 to 90 days, or 0 to switch it off."),
                        "max_value": _("Remembering a browser lasts 1 to 90 days, or 0 to switch it off."),
                        "required": _("Remembering a browser lasts 1 to 90 days, or 0 to switch it off.")},
        widget=forms.NumberInput(attrs={"step": "1"}),
    )
    allow_passkeys = forms.BooleanField(
        label=_("Allow passkey sign-in"), required=False,
        help_text=_("A passkey unlocked with a PIN, fingerprint or face counts as both factors, so people can "
                    "sign in with it alone, without a password."),
    )

    @classmethod
    def of(cls, account) -> PolicyForm:
        """An unbound form showing the account's policy as it is."""
        return cls(initial={field: getattr(account, field) for field in cls.base_fields})


class AdminDisableForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=500,
        help_text=_("For example: lost phone, confirmed by a video call. The user sees it in the e-mail."),
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    password = _password_field(_("Your own password"))
