"""Confirming the password once on the security page, so the changes after it do not ask again."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from ... import signin_state
from ...services.errors import ServiceError
from ..forms import PasswordForm
from .common import signed_in_required
from .security import refuse_on_overview, render_overview


@sensitive_post_parameters("password")
@require_POST
@signed_in_required
def confirm_password(request):
    form = PasswordForm(request.POST, auto_id="confirm_%s")
    forms = {"confirm_form": form}
    if not form.is_valid():
        return render_overview(request, forms=forms, status=400)
    try:
        signin_state.confirm_password(request, form.cleaned_data["password"])
    except ServiceError as error:
        return refuse_on_overview(request, forms, error, form=form)
    messages.success(request, _("Thank you. You can make changes now without typing your password again."))
    return redirect("web:security")
