"""Setting up an authenticator app: start (password), scan, confirm with the first code.

The same pages serve switching 2FA on, replacing the authenticator, the lost-phone path after a
backup-code sign-in, and the setup an account's policy forces on a half-signed-in user.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from ... import signin_state
from ...http import origin, status_for
from ...services import authenticators, signin
from ...services.errors import NoPendingSetup, ServiceError
from ...services.factors import enabled
from ..forms import AddAppForm, AppCodeForm
from .codes import render_codes
from .common import refuse, with_next

START_TEMPLATE = "twostep/security/setup_start.html"
SCAN_TEMPLATE = "twostep/security/setup.html"


def who_sets_up(request):
    """Return (user, forced): who may set up now, and whether they are only half signed in.

    The security-key page asks the same: a person held here by the policy may register a key.
    """
    user = signin_state.setup_user(request)
    return user, user is not None and not request.user.is_authenticated


def expired(request):
    messages.info(request, _("Your sign-in expired. Please sign in again to set up your authenticator."))
    return redirect(with_next("web:login", reverse("web:setup")))


def _base_context(request, user, forced):
    two_factor_on = enabled(user)
    return {
        "forced": forced,  # half-signed-in: the password step sent this user here
        "policy_requires": authenticators.is_required(user) and not two_factor_on,
        "two_factor_on": two_factor_on,
        "setup_login": user.login,
        "lost_phone": signin_state.after_recovery(request),
    }


def _render_scan(request, user, forced, pending, form, status=200):
    context = {
        **_base_context(request, user, forced),
        "setup": pending,
        "qr_svg": mark_safe(pending.qr_svg),  # noqa: S308 — segno's SVG of our own otpauth URI
        "form": form,
    }
    return render(request, SCAN_TEMPLATE, context, status=status)


@sensitive_post_parameters("password")
@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def setup(request):
    user, forced = who_sets_up(request)
    if user is None:
        return expired(request)
    fresh = signin_state.password_is_fresh(request)
    context = _base_context(request, user, forced)
    if request.method != "POST":
        pending = authenticators.pending_app(user)
        if pending is not None:
            # No autofocus: on a phone it would scroll past the QR code to the field at the bottom.
            return _render_scan(request, user, forced, pending, AppCodeForm(auto_id="setup_%s", autofocus=False))
        context["form"] = AddAppForm(auto_id="start_%s", require_password=not fresh)
        return render(request, START_TEMPLATE, context)
    form = context["form"] = AddAppForm(request.POST, auto_id="start_%s", require_password=not fresh)
    if not form.is_valid():
        return render(request, START_TEMPLATE, context, status=400)
    try:
        authenticators.start_app(user, form.cleaned_data["password"] or None, origin(request), fresh=fresh,
                                 name=form.cleaned_data.get("name"))
    except ServiceError as error:
        return refuse(request, START_TEMPLATE, context, error, form=form)
    # Post/redirect/get: a reload shows the same pending key instead of making another.
    return redirect("web:setup")


@sensitive_post_parameters("code")
@require_POST
@never_cache
def confirm(request):
    user, forced = who_sets_up(request)
    if user is None:
        return expired(request)
    form = AppCodeForm(request.POST, auto_id="setup_%s")
    status = 400
    if form.is_valid():
        try:
            done = authenticators.confirm_app(user, form.cleaned_data["code"], origin(request),
                                              **signin.new_authenticator_terms(signin_state.of(request)))
        except NoPendingSetup as error:
            messages.error(request, error.message)
            return redirect("web:setup")
        except ServiceError as error:
            form.add_error("code", error.message)
            status = status_for(error)
        else:
            if forced:
                signin.setup_done(signin_state.of(request), user, origin(request))
            else:
                # Confirming ended the user's other sessions; this one stays signed in.
                signin_state.keep_session_with_new_factor(request, user)
            signin_state.recovered(request)  # after a recovery sign-in: the new phone is in place
            if done.backup_codes is not None:
                return render_codes(request, request.user, done.backup_codes, first_time=not done.replaced)
            if done.replaced:
                messages.success(request, _("Your new authenticator app is registered. The old one no longer works."))
            else:
                messages.success(request, _("%(name)s is added to your authenticators.")
                                 % {"name": done.authenticator.name})
            return redirect("web:security")
    pending = authenticators.pending_app(user)
    if pending is None:
        messages.error(request, NoPendingSetup.default_message)
        return redirect("web:setup")
    return _render_scan(request, user, forced, pending, form, status=status)
