"""The user's authenticators on the Account security page: rename one, remove one."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import NON_FIELD_ERRORS
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from ... import signin_state
from ...http import origin
from ...services import authenticators
from ...services.errors import ServiceError
from ..forms import PasswordForm, RenameForm
from .common import signed_in_required
from .security import refuse_on_overview, render_overview


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
        return refuse_on_overview(request, forms, error, form=form, field="name")
    messages.success(request, _("Renamed to %(name)s.") % {"name": row.name})
    return redirect("web:security")


@sensitive_post_parameters("password")
@require_POST
@signed_in_required
def remove(request, authenticator_id: int):
    fresh = signin_state.password_is_fresh(request)
    form = PasswordForm(request.POST, auto_id=f"remove{authenticator_id}_%s", require_password=not fresh)
    forms = {"remove_forms": {authenticator_id: form}}
    if not form.is_valid():
        return render_overview(request, forms=forms, status=400)
    try:
        still_on = authenticators.remove(request.user, authenticator_id, form.cleaned_data["password"] or None,
                                         origin(request), fresh=fresh)
    except ServiceError as error:
        return refuse_on_overview(request, forms, error, form=form, field=NON_FIELD_ERRORS)
    # Removing ended the user's other sessions; this one stays signed in.
    signin_state.keep_session(request, request.user)
    if still_on:
        messages.success(request, _("The authenticator is removed: it no longer signs you in."))
    else:
        messages.success(request, _("Your last authenticator is removed: two-factor authentication is off "
                                    "and your backup codes no longer work."))
    return redirect("web:security")
