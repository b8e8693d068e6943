"""The user's authenticators on the Account security page: rename one, remove one."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from ... import signin_state
from ...http import origin, status_for
from ...services import authenticators
from ...services.errors import ServiceError, Throttled, WrongPassword
from ..forms import PasswordForm, RenameForm
from .common import signed_in_required, throttled_message
from .security import render_overview


@require_POST
@signed_in_required
def rename(request, authenticator_id: int):
    form = RenameForm(request.POST, auto_id=f"rename{authenticator_id}_%s")
    forms = {"rename_forms": {authenticator_id: form}}
    if not form.is_valid():
        return render_overview(request, forms=forms, status=400)
    try:
        row = authenticators.rename(request.user, authenticator_id, form.cleaned_data["name"], origin(request))
    except ServiceError as error:
        form.add_error("name", error.message)
        return render_overview(request, forms=forms, status=status_for(error))
    messages.success(request, _("Renamed to %(name)s.") % {"name": row.name})
    return redirect("web:security")


@sensitive_post_parameters("password")
@require_POST
@signed_in_required
def remove(request, authenticator_id: int):
    form = PasswordForm(request.POST, auto_id=f"remove{authenticator_id}_%s")
    forms = {"remove_forms": {authenticator_id: form}}
    if not form.is_valid():
        return render_overview(request, forms=forms, status=400)
    try:
        still_on = authenticators.remove(request.user, authenticator_id, form.cleaned_data["password"],
                                         origin(request))
    except Throttled as error:
        return render_overview(request, forms=forms, page_error=throttled_message(error), status=429,
                               retry_after=error.retry_after)
    except WrongPassword as error:
        form.add_error("password", error.message)
        return render_overview(request, forms=forms, status=status_for(error))
    except ServiceError as error:
        form.add_error(None, error.message)
        return render_overview(request, forms=forms, status=status_for(error))
    # Removing ended the user's other sessions; this one stays signed in.
    signin_state.keep_session(request, request.user)
    if still_on:
        messages.success(request, _("The authenticator is removed: it no longer signs you in."))
    else:
        messages.success(request, _("Your last authenticator is removed: two-factor authentication is off "
                                    "and your backup codes no longer work."))
    return redirect("web:security")
