"""The security-key and passkey pages: add one, use one as the second step, sign in with a passkey.

Each ceremony is a page that carries the options as a JSON data block; static/twostep/webauthn.js
asks the browser for the credential and posts it back in a hidden field of an ordinary form
(CSRF token included). Without JavaScript the page says a key needs it and links elsewhere.
"""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from ... import signin_state
from ...http import origin, relying_party, status_for
from ...services import security_keys, signin
from ...services.errors import (
    InvalidInput,
    NoPendingSignIn,
    ServiceError,
    Throttled,
    WrongPassword,
)
from ...services.signin import AUTHENTICATED, SECOND_FACTOR
from ..forms import PASSWORD_MAX
from . import setup
from .codes import render_codes
from .common import next_param, next_url, render_throttled
from .signin import expired, signed_in

ADD_TEMPLATE = "twostep/webauthn/add.html"
KEY_TEMPLATE = "twostep/webauthn/sign_in_key.html"
PASSKEY_TEMPLATE = "twostep/webauthn/sign_in_passkey.html"
CREDENTIAL_MAX = 64 * 1024  # a real answer is a few kilobytes


class AddKeyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=60, required=False,
                           help_text=gettext_lazy("To tell your authenticators apart, e.g. “YubiKey” or “Laptop”."))
    password = forms.CharField(label=gettext_lazy("Your password"), max_length=PASSWORD_MAX, strip=False,
                               required=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))
    passkey = forms.BooleanField(
        label=gettext_lazy("Make it a passkey"), required=False,
        help_text=gettext_lazy("A passkey is kept on the key or device and unlocked with its PIN, fingerprint "
                               "or face; where your organisation allows it, it signs you in without a password."))

    def __init__(self, *args, require_password=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password"].required = require_password


class CredentialForm(forms.Form):
    credential = forms.CharField(max_length=CREDENTIAL_MAX, required=True, widget=forms.HiddenInput)

    def clean_credential(self):
        try:
            value = json.loads(self.cleaned_data["credential"])
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Your browser's answer could not be read. Try again."))
        return value


def _answered(request) -> CredentialForm | None:
    """Return the credential form when this POST carries the browser's answer, else None."""
    return CredentialForm(request.POST) if "credential" in request.POST else None


def _form_error(form: CredentialForm) -> str:
    return next(iter(form.errors.get("credential", [])), _("Your browser's answer could not be read. Try again."))


# Adding a key ---------------------------------------------------------------------------------

@sensitive_post_parameters("password")
@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def add(request):
    """Add a key for the signed-in user, or as the first authenticator of one the policy holds."""
    held = signin_state.held_login(request)  # read before setup_user forgets an expired setup
    user, forced = setup.who_sets_up(request)
    if user is None:
        if held():  # held by the policy until the setup expired
            return setup.expired(request)
        return redirect_to_login(request.get_full_path(), reverse(settings.LOGIN_URL))
    fresh = signin_state.password_is_fresh(request)
    form = AddKeyForm(require_password=not fresh)
    # Held by the policy, the page leads back to the app setup or out, never to the security page
    # (the setup pages' way out, setup_leave.html, reads the same two names).
    context = {"form": form, "forced": forced, "policy_requires": signin_state.setup_required(request)}
    if request.method != "POST":
        return render(request, ADD_TEMPLATE, context)
    answer = _answered(request)
    if answer is not None:
        return _finish_add(request, user, forced, answer, context)
    form = context["form"] = AddKeyForm(request.POST, require_password=not fresh)
    if not form.is_valid():
        return render(request, ADD_TEMPLATE, context, status=400)
    try:
        options = security_keys.start(
            signin_state.of(request), user, form.cleaned_data["password"] or None, origin(request),
            relying_party(request), name=form.cleaned_data["name"], passkey=form.cleaned_data["passkey"],
            fresh=fresh)
    except Throttled as error:
        return render_throttled(request, ADD_TEMPLATE, context, error)
    except WrongPassword as error:
        form.fields["password"].required = True
        form.add_error("password", error.message)
        return render(request, ADD_TEMPLATE, context, status=status_for(error))
    except InvalidInput as error:  # the name
        form.add_error("name", error.message)
        return render(request, ADD_TEMPLATE, context, status=status_for(error))
    except ServiceError as error:
        context["page_error"] = error.message
        return render(request, ADD_TEMPLATE, context, status=status_for(error))
    return render(request, ADD_TEMPLATE, {**context, "ceremony": "create", "options": {"publicKey": options},
                                          "passkey": form.cleaned_data["passkey"]})


def _finish_add(request, user, forced: bool, answer: CredentialForm, context):
    if not answer.is_valid():
        context["page_error"] = _form_error(answer)
        return render(request, ADD_TEMPLATE, context, status=400)
    try:
        done = security_keys.finish(signin_state.of(request), user, answer.cleaned_data["credential"],
                                    origin(request))
    except ServiceError as error:
        context["page_error"] = error.message
        return render(request, ADD_TEMPLATE, context, status=status_for(error))
    if forced:  # the key is the second factor the policy asked for: the sign-in completes with it
        signin.setup_done(signin_state.of(request), user, origin(request), authenticator=done.authenticator)
    else:
        signin_state.keep_session_with_new_factor(request, user)  # the user's other sessions ended with the new factor
    signin_state.recovered(request)
    if done.backup_codes is not None:
        return render_codes(request, request.user, done.backup_codes, first_time=True)
    messages.success(request, _("%(name)s is added to your authenticators.") % {"name": done.authenticator.name})
    return redirect("web:security")


# The second step ------------------------------------------------------------------------------

@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def sign_in_key(request):
    """The second step with a security key or passkey: offered first to a user who has one."""
    held = signin_state.held_login(request)  # read before pending_user forgets an expired sign-in
    user = signin_state.pending_user(request, SECOND_FACTOR)
    if user is None:
        return expired(request, held)
    context = {"next": next_param(request), "pending_login": user.login,
               "remember_days": user.account.remember_browser_days,
               "remember_checked": request.POST.get("remember") == "on"}
    try:
        return _key_step(request, user, context)
    except NoPendingSignIn:  # it expired (or the password changed) while the key was being asked
        return expired(request, held)


def _key_step(request, user, context):
    session = signin_state.of(request)
    status = 200
    answer = _answered(request) if request.method == "POST" else None
    if answer is not None and not answer.is_valid():
        context["page_error"], status = _form_error(answer), 400
    elif answer is not None:
        try:
            signin.second_factor(session, "webauthn", answer.cleaned_data["credential"], origin(request))
        except Throttled as error:
            context["options"] = {"publicKey": signin.webauthn_options(session, relying_party(request),
                                                                       passkey=False)}
            return render_throttled(request, KEY_TEMPLATE, context, error)
        except NoPendingSignIn:
            raise  # sign_in_key answers it
        except ServiceError as error:
            context["page_error"], status = error.message, status_for(error)
        else:
            response = signed_in(request, user, next_url(request))
            if context["remember_checked"]:  # only now, after both factors (scheb #253)
                signin_state.remember_browser(request, response)
            return response
    context["options"] = {"publicKey": signin.webauthn_options(session, relying_party(request), passkey=False)}
    return render(request, KEY_TEMPLATE, context, status=status)


# Passkey sign-in ------------------------------------------------------------------------------

@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def sign_in_passkey(request):
    """Sign in with a passkey alone, where the user's account allows it."""
    if request.method != "POST" and signin_state.stage(request) == AUTHENTICATED:
        return redirect(next_url(request))
    session = signin_state.of(request)
    context = {"next": next_param(request)}
    status = 200
    answer = _answered(request) if request.method == "POST" else None
    if answer is not None:
        if not answer.is_valid():
            context["page_error"], status = _form_error(answer), 400
        else:
            try:
                outcome = signin.passkey(session, answer.cleaned_data["credential"], origin(request))
            except Throttled as error:
                context["options"] = {"publicKey": signin.webauthn_options(session, relying_party(request),
                                                                           passkey=True)}
                return render_throttled(request, PASSKEY_TEMPLATE, context, error)
            except ServiceError as error:
                context["page_error"], status = error.message, status_for(error)
            else:
                return signed_in(request, outcome.user, next_url(request))
    context["options"] = {"publicKey": signin.webauthn_options(session, relying_party(request), passkey=True)}
    return render(request, PASSKEY_TEMPLATE, context, status=status)
