"""Password pages: reset by e-mail (never signs in), and change while signed in."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from ... import signin_state
from ...http import origin, password_reset_url, status_for
from ...services import passwords
from ...services.errors import InvalidInput, ServiceError, Throttled, WrongPassword
from ..forms import _password_field
from .common import render_throttled, signed_in_required

RESET_TEMPLATE = "twostep/passwords/reset.html"
SET_TEMPLATE = "twostep/passwords/set.html"
CHANGE_TEMPLATE = "twostep/passwords/change.html"


class ResetForm(forms.Form):
    login = forms.CharField(label=gettext_lazy("Login or e-mail address"), max_length=150,
                            widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}))


class SetPasswordForm(forms.Form):
    password = _password_field(gettext_lazy("New password"), autocomplete="new-password")


class ChangeForm(forms.Form):
    current_password = _password_field(gettext_lazy("Current password"))
    new_password = _password_field(gettext_lazy("New password"), autocomplete="new-password")


def _same_origin_referrer(response):
    # The reset link's token is in this page's address: never send it to another site as a Referer.
    # (not no-referrer: Chromium then posts the form with "Origin: null" and CSRF refuses it)
    response["Referrer-Policy"] = "same-origin"
    return response


@sensitive_post_parameters("login")
@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def reset(request):
    if request.method != "POST":
        return render(request, RESET_TEMPLATE, {"form": ResetForm()})
    form = ResetForm(request.POST)
    if not form.is_valid():
        return render(request, RESET_TEMPLATE, {"form": form}, status=400)
    try:
        passwords.request_reset(form.cleaned_data["login"], origin(request), password_reset_url)
    except Throttled as error:
        return render_throttled(request, RESET_TEMPLATE, {"form": form}, error)
    # The same answer whether or not the login exists (ASVS 6.3.8).
    messages.info(request, _("If that login or e-mail address is known here, a message with a link to "
                             "reset the password is on its way. The link works once."))
    return redirect("web:login")


@sensitive_post_parameters("password")
@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def reset_confirm(request, uidb64: str, token: str):
    try:
        user = passwords.user_for_link(uidb64, token)
    except passwords.InvalidResetLink as error:
        return _same_origin_referrer(render(request, SET_TEMPLATE, {"page_error": error.message, "invalid": True},
                                   status=400))
    context = {"reset_login": user.login}
    if request.method != "POST":
        return _same_origin_referrer(render(request, SET_TEMPLATE, {**context, "form": SetPasswordForm()}))
    form = context["form"] = SetPasswordForm(request.POST)
    if not form.is_valid():
        return _same_origin_referrer(render(request, SET_TEMPLATE, context, status=400))
    try:
        passwords.confirm_reset(uidb64, token, form.cleaned_data["password"], origin(request))
    except InvalidInput as error:
        form.add_error("password", error.message)
        return _same_origin_referrer(render(request, SET_TEMPLATE, context, status=status_for(error)))
    except ServiceError as error:
        context["page_error"] = error.message
        return _same_origin_referrer(render(request, SET_TEMPLATE, context, status=status_for(error)))
    # Never signed in here (ASVS 6.4.3): the sign-in page asks for the password and the code.
    signin_state.sign_out(request)
    messages.success(request, _("Your password was changed and you were signed out everywhere. "
                                "Sign in with the new password."))
    return redirect("web:login")


@sensitive_post_parameters("current_password", "new_password")
@require_http_methods(["GET", "HEAD", "POST"])
@signed_in_required
def change(request):
    if request.method != "POST":
        return render(request, CHANGE_TEMPLATE, {"form": ChangeForm()})
    form = ChangeForm(request.POST)
    context = {"form": form}
    if not form.is_valid():
        return render(request, CHANGE_TEMPLATE, context, status=400)
    try:
        user = passwords.change_password(request.user, form.cleaned_data["current_password"],
                                         form.cleaned_data["new_password"], origin(request))
    except Throttled as error:
        return render_throttled(request, CHANGE_TEMPLATE, context, error)
    except WrongPassword as error:
        form.add_error("current_password", error.message)
        return render(request, CHANGE_TEMPLATE, context, status=status_for(error))
    except InvalidInput as error:
        form.add_error("new_password", error.message)
        return render(request, CHANGE_TEMPLATE, context, status=status_for(error))
    signin_state.keep_session(request, user)
    messages.success(request, _("Your password was changed. You were signed out everywhere else."))
    return redirect("web:security")
