"""The Account security page and the changes made from it: new codes, switching 2FA off."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST, require_safe

from ... import codes_state, signin_state
from ...core.backup_codes import COUNT
from ...http import origin, status_for
from ...services import activity, authenticators, recovery
from ...services.errors import InvalidCode, ServiceError, Throttled, TwoFactorRequired, WrongPassword
from ...services.factors import backup_codes, enabled
from ..forms import AddAppForm, DisableForm, PasswordForm, RenameForm
from .codes import render_codes
from .common import signed_in_required, throttled_message

TEMPLATE = "twostep/security/overview.html"
RECENT_EVENTS = 10


def _password_forms(request):
    """The password-confirmed forms, unbound; the password is skipped right after sign-in."""
    need = not signin_state.password_is_fresh(request)
    return {
        "enable_form": AddAppForm(auto_id="enable_%s", require_password=need),
        "add_app_form": AddAppForm(auto_id="add_app_%s", require_password=need),
        "generate_form": PasswordForm(auto_id="generate_%s", require_password=need),
        "disable_form": DisableForm(auto_id="disable_%s", require_password=need),
        # Stale: one "confirm it is you" form stands for every password field of the page.
        "password_fresh": not need,
        "confirm_form": PasswordForm(auto_id="confirm_%s"),
    }


def render_overview(request, *, forms=None, page_error=None, status=200, retry_after=None):
    user = request.user
    two_factor_on = enabled(user)
    left = backup_codes.remaining(user) if two_factor_on else 0
    code_set = backup_codes.current_set(user)
    events, _more = activity.own_events(user, limit=RECENT_EVENTS)
    context = {
        "two_factor_on": two_factor_on,
        # Switched off by an admin (or the operator) since last set up: say so, and lead back.
        "switched_off": None if two_factor_on else recovery.switched_off_for_user(user),
        "authenticators": _authenticator_rows(user, forms or {}, not signin_state.password_is_fresh(request)),
        "required": authenticators.is_required(user),
        "required_message": TwoFactorRequired.default_message,
        "codes_left": left,
        "codes_total": COUNT,
        "codes_low": two_factor_on and backup_codes.is_low(left),
        "codes_made_at": code_set.generated_at if code_set else None,
        # A set nobody confirmed saving: the page asks until it is confirmed or replaced.
        "codes_unsaved": two_factor_on and backup_codes.is_saved(code_set) is False,
        "codes_shown_again": two_factor_on and codes_state.unsaved(request) is not None,
        "events": events,
        "page_error": page_error,
        "retry_after": retry_after,
        **_password_forms(request),
        **(forms or {}),
    }
    response = render(request, TEMPLATE, context, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _authenticator_rows(user, forms: dict, need: bool = True) -> list[dict]:
    """Each authenticator with its kind in words and its rename and remove forms (bound if posted)."""
    renames, removals = forms.pop("rename_forms", {}), forms.pop("remove_forms", {})
    return [{
        "item": row,
        "kind": authenticators.describe(row),
        "rename_form": renames.get(row.pk) or RenameForm(auto_id=f"rename{row.pk}_%s", initial={"name": row.name}),
        "remove_form": removals.get(row.pk) or PasswordForm(auto_id=f"remove{row.pk}_%s", require_password=need),
        "open": row.pk in renames or row.pk in removals,
    } for row in authenticators.listing(user)]


def refuse_on_overview(request, forms: dict, error: ServiceError, *, form, field: str | None = None):
    """Show a refused change on the security page: in its form's field, else at the top.

    The overview's counterpart of common.refuse: 429 with Retry-After when throttled; a wrong
    password in the form's password field.
    """
    if isinstance(error, Throttled):
        return render_overview(request, forms=forms, page_error=throttled_message(error), status=429,
                               retry_after=error.retry_after)
    if isinstance(error, WrongPassword) and "password" in form.fields:
        form.fields["password"].required = True
        field = "password"
    if field is not None:
        form.add_error(field, error.message)
        return render_overview(request, forms=forms, status=status_for(error))
    return render_overview(request, forms=forms, page_error=error.message, status=status_for(error))


@require_safe
def home(request):
    return redirect("web:security")


@require_safe
@signed_in_required
def overview(request):
    return render_overview(request)


@sensitive_post_parameters("password")
@require_POST
@signed_in_required
def generate_codes(request):
    fresh = signin_state.password_is_fresh(request)
    form = PasswordForm(request.POST, auto_id="generate_%s", require_password=not fresh)
    forms = {"generate_form": form}
    if not form.is_valid():
        return render_overview(request, forms=forms, status=400)
    try:
        new = backup_codes.generate(request.user, form.cleaned_data["password"] or None,
                                    origin(request), fresh=fresh)
    except ServiceError as error:
        return refuse_on_overview(request, forms, error, form=form)
    return render_codes(request, request.user, new, first_time=False)


@sensitive_post_parameters("password", "code")
@require_POST
@signed_in_required
def disable(request):
    fresh = signin_state.password_is_fresh(request)
    form = DisableForm(request.POST, auto_id="disable_%s", require_password=not fresh)
    forms = {"disable_form": form}
    if not form.is_valid():
        return render_overview(request, forms=forms, status=400)
    try:
        authenticators.disable(request.user, form.cleaned_data["password"] or None, form.cleaned_data["code"],
                               origin(request), fresh=fresh)
    except ServiceError as error:
        return refuse_on_overview(request, forms, error, form=form,
                                  field="code" if isinstance(error, InvalidCode) else None)
    # Switching off ended the user's other sessions; this one stays signed in.
    signin_state.keep_session(request, request.user)
    messages.success(request, _("Two-factor authentication is off. Your backup codes no longer work."))
    return redirect("web:security")


@require_safe
@signed_in_required
def recover(request):
    """After a backup-code or recovery-pass sign-in: say what was used and offer a new authenticator."""
    if not signin_state.after_recovery(request):
        return redirect("web:security")
    left = backup_codes.remaining(request.user)
    return render(request, "twostep/security/recover.html", {
        "codes_left": left,
        "via_pass": signin_state.signed_in_with_pass(request),
        "authenticators": authenticators.listing(request.user),
        "codes_low": backup_codes.is_low(left),
        "codes_low_limit": settings.TWOSTEP_BACKUP_CODES_LOW,
        "form": PasswordForm(auto_id="recover_%s",
                             require_password=not signin_state.password_is_fresh(request)),
    })
