"""Admin recovery pages: the one-time sign-in pass (issue, use) and approving another admin's request."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from ... import signin_state
from ...http import origin, status_for
from ...services import recovery_passes, signin
from ...services.errors import (
    InvalidInput,
    NoPendingSignIn,
    NotAccountAdmin,
    NotFound,
    ServiceError,
    Throttled,
    WrongPassword,
)
from ...services.signin import SECOND_FACTOR
from ..forms import CodeInput, _password_field
from .account_admin import (
    StepUpForm,
    account_user_or_404,
    render_users,
    step_up_context,
    step_up_error,
)
from .common import render_throttled, signed_in_required
from .signin import expired

ISSUE_TEMPLATE = "twostep/recovery/issue.html"
SHOWN_TEMPLATE = "twostep/recovery/pass_shown.html"
USE_TEMPLATE = "twostep/recovery/use.html"


class PassForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("One-time sign-in pass from your admin"), max_length=64,
        widget=CodeInput(attrs={"autocomplete": "off", "autocapitalize": "characters",
                                      "spellcheck": "false", "autofocus": True, "class": "code-input"}),
    )


class ApproveForm(forms.Form):
    """Another admin's request approved: the approver's password and, unless fresh, a code.

    One form per waiting request on the users page; its fields' ids name the request, so an
    error is shown beside the request it belongs to and the error summary links there.
    """

    password = _password_field(gettext_lazy("Your own password"))
    code = forms.CharField(
        label=gettext_lazy("A current code from your app, or one of your backup codes"), max_length=64,
        widget=CodeInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "none",
                                "spellcheck": "false", "class": "code-input"}),
    )

    def __init__(self, *args, request_id: int, need_code: bool = True, **kwargs):
        super().__init__(*args, auto_id=f"approve-%s-{request_id}", **kwargs)
        self.request_id = request_id
        if not need_code:
            del self.fields["code"]  # just after a sign-in: not shown, and nothing typed in it is read


@sensitive_post_parameters("code")
@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def use_pass(request):
    """The second step with the admin's pass: then straight to registering a new authenticator."""
    held = signin_state.held_login(request)  # read before pending_user forgets an expired sign-in
    user = signin_state.pending_user(request, SECOND_FACTOR)
    if user is None:
        return expired(request, held)
    context = {"pending_login": user.login}
    if request.method != "POST":
        return render(request, USE_TEMPLATE, {**context, "form": PassForm()})
    form = context["form"] = PassForm(request.POST)
    if not form.is_valid():
        return render(request, USE_TEMPLATE, context, status=400)
    try:
        signin.second_factor(signin_state.of(request), "recovery_pass", form.cleaned_data["code"],
                             origin(request))
    except Throttled as error:
        return render_throttled(request, USE_TEMPLATE, context, error)
    except NoPendingSignIn:
        return expired(request, held)
    except ServiceError as error:
        form.add_error("code", error.message)
        return render(request, USE_TEMPLATE, context, status=status_for(error))
    return redirect("web:recover")


@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "HEAD", "POST"])
@signed_in_required
def issue_pass(request, user_id: int):
    target = account_user_or_404(request, user_id, "issue_recovery_pass")
    context = {"target": target, "is_self": target.pk == request.user.pk,
               "second_admin": request.user.account.require_second_admin, **step_up_context(request)}
    need_code = context["admin_has_2fa"] and not context["step_up_fresh"]
    if request.method != "POST":
        return render(request, ISSUE_TEMPLATE, {**context, "form": StepUpForm(need_code=need_code)})
    form = context["form"] = StepUpForm(request.POST, need_code=need_code)
    if not form.is_valid():
        return render(request, ISSUE_TEMPLATE, context, status=400)
    try:
        issued = recovery_passes.issue(request.user, user_id, form.cleaned_data["reason"],
                                       form.cleaned_data["password"], origin(request),
                                       code=form.cleaned_data.get("code"),
                                       second_factor_fresh=context["step_up_fresh"])
    except Throttled as error:
        return render_throttled(request, ISSUE_TEMPLATE, context, error)
    except InvalidInput as error:
        form.add_error("reason", error.message)
        return render(request, ISSUE_TEMPLATE, context, status=status_for(error))
    except WrongPassword as error:
        form.add_error("password", error.message)
        return render(request, ISSUE_TEMPLATE, context, status=status_for(error))
    except ServiceError as error:
        if not step_up_error(form, error):
            context["page_error"] = error.message
        return render(request, ISSUE_TEMPLATE, context, status=status_for(error))
    signin_state.stepped_up(request, form.cleaned_data.get("code"))
    if issued.pending:
        messages.info(request, _("The one-time sign-in pass for %(login)s waits for another admin's approval.")
                      % {"login": target.login})
        return redirect("web:users")
    return render(request, SHOWN_TEMPLATE, {"target": target, "code": issued.code,
                                            "expires_at": issued.request.expires_at})


@sensitive_post_parameters("password", "code")
@require_POST
@signed_in_required
def approve(request, request_id: int):
    fresh = step_up_context(request)["step_up_fresh"]
    form = ApproveForm(request.POST, request_id=request_id, need_code=not fresh)
    if not form.is_valid():
        return render_users(request, status=400, approve_form=form)  # 403 for anyone but an admin
    try:
        done = recovery_passes.approve(request.user, request_id, form.cleaned_data["password"], origin(request),
                                       code=form.cleaned_data.get("code"), second_factor_fresh=fresh)
    except NotAccountAdmin as error:
        raise PermissionDenied(error.message) from None
    except NotFound:
        raise Http404() from None
    except ServiceError as error:
        # Beside the request it belongs to: a wrong code under the code, the rest under the password.
        if not step_up_error(form, error):
            form.add_error("password", str(error.message))
        return render_users(request, status=status_for(error), approve_form=form)
    signin_state.stepped_up(request, form.cleaned_data.get("code"))
    if done.code:
        return render(request, SHOWN_TEMPLATE, {"target": done.request.user, "code": done.code,
                                                "expires_at": done.request.expires_at})
    messages.success(request, _("Approved: two-factor authentication is off for %(login)s.")
                     % {"login": done.request.user.login})
    return redirect("web:users")


@require_POST
@signed_in_required
def cancel(request, request_id: int):
    try:
        recovery_passes.cancel(request.user, request_id, origin(request))
    except NotAccountAdmin as error:
        raise PermissionDenied(error.message) from None
    except NotFound:
        raise Http404() from None
    messages.success(request, _("The request was cancelled."))
    return redirect("web:users")
