"""The account admin's pages: the users of the account, its policy, switching 2FA off."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ... import signin_state
from ...http import origin, status_for
from ...services import accounts, recovery, signin
from ...services.errors import (
    AdminNeedsTwoFactor,
    InvalidCode,
    InvalidInput,
    NotAccountAdmin,
    NotFound,
    SecondFactorRequired,
    ServiceError,
    Throttled,
    WrongPassword,
)
from ...services.factors import enabled
from ..forms import AdminDisableForm, CodeInput, PolicyForm, SearchForm
from .common import render_throttled, signed_in_required

DISABLE_TEMPLATE = "twostep/account/disable_two_factor.html"


class StepUpForm(AdminDisableForm):
    """A reason, the admin's password and, unless a second factor was proved moments ago, a code."""

    code = forms.CharField(
        label=gettext_lazy("A current code from your app, or one of your backup codes"), max_length=64,
        help_text=gettext_lazy("Your own second factor confirms that it is you changing someone else's."),
        widget=CodeInput(attrs={"autocomplete": "one-time-code", "autocapitalize": "none",
                                      "spellcheck": "false", "class": "code-input"}),
    )

    def __init__(self, *args, need_code=True, **kwargs):
        super().__init__(*args, **kwargs)
        if not need_code:
            del self.fields["code"]  # the field is not shown, and nothing typed in it is read


def step_up_context(request) -> dict:
    """What the admin's forms need to know of the admin's own second factor."""
    return {"admin_has_2fa": enabled(request.user),
            "step_up_fresh": signin.second_factor_is_fresh(signin_state.of(request))}


def step_up_error(form, error: ServiceError) -> bool:
    """Put a wrong or missing code under the code field; tell whether it was one."""
    if isinstance(error, InvalidCode | SecondFactorRequired) and "code" in form.fields:
        form.add_error("code", error.message)
        return True
    return False


USERS_TEMPLATE = "twostep/account/users.html"


def render_users(request, *, status: int = 200, **forms):
    """Render the users page; a refused policy form comes back bound, with its errors and input.

    `forms` may hold the `policy_form`, or an `approve_form` with its `approve_request_id`, as the
    admin sent them.
    """
    search = SearchForm(request.GET)
    wanted = search.cleaned_data if search.is_valid() else {"q": "", "after": ""}
    try:
        rows, next_cursor = accounts.list_users(request.user, query=wanted["q"],
                                                after=wanted["after"] or None,
                                                enrolled={"true": True, "false": False}.get(request.GET.get("enrolled")))
    except NotAccountAdmin as error:
        raise PermissionDenied(error.message) from None
    account = request.user.account
    return render(request, USERS_TEMPLATE, {
        "search": SearchForm(initial={"q": wanted["q"]}),
        "query": wanted["q"],
        "rows": rows,
        "next_cursor": next_cursor,
        "paged": bool(wanted["after"]),
        "policy_form": PolicyForm.of(account),
        "account_name": account.name,
        **step_up_context(request),
        **forms,
    }, status=status)


def refuse_policy(request, name: str, form, error: ServiceError):
    """Show a refused policy change on the users page: each error under its field, input kept."""
    if isinstance(error, NotAccountAdmin):
        raise PermissionDenied(error.message)
    fields = (error.extra.get("fields") or {}) if isinstance(error.extra, dict) else {}
    named = [field for field in fields if field in form.fields]
    for field in named or [None]:
        form.add_error(field, str(error.message))
    return render_users(request, status=status_for(error), **{name: form})


@require_safe
@signed_in_required
def users(request):
    return render_users(request)


@require_POST
@signed_in_required
def policy(request):
    """Save the whole policy form at once: every field or, when one is refused, none."""
    form = PolicyForm(request.POST)
    if not form.is_valid():
        return render_users(request, status=400, policy_form=form)  # 403 for anyone but an admin
    try:
        account = accounts.change_policy(request.user, form.cleaned_data, origin(request))
    except (NotAccountAdmin, InvalidInput, AdminNeedsTwoFactor) as error:
        return refuse_policy(request, "policy_form", form, error)
    messages.success(request, " ".join(policy_saved_sentences(account, account.changed_policy)))
    return redirect("web:users")


def policy_saved_sentences(account, changed: tuple[str, ...]) -> list[str]:
    """Say what a saved policy changed, one sentence per change that people will notice."""
    if not changed:
        return [_("The policy was saved; nothing in it changed.")]
    said = []
    if "require_two_factor" in changed:
        said.append(_("Everyone in this account now needs two-factor authentication.") if account.require_two_factor
                    else _("Two-factor authentication is now optional in this account."))
    if "require_two_factor_from" in changed:
        deadline = account.require_two_factor_from
        said.append(_("From %(date)s everyone in this account needs two-factor authentication.")
                    % {"date": date_format(deadline, "DATE_FORMAT")} if deadline
                    else _("The deadline for two-factor authentication was removed."))
    if "require_second_admin" in changed:
        said.append(_("Switching two-factor authentication off and one-time sign-in passes now wait for a "
                      "second admin's approval.") if account.require_second_admin
                    else _("Switching two-factor authentication off and one-time sign-in passes no longer "
                           "wait for a second admin."))
    if "remember_browser_days" in changed:
        days = account.remember_browser_days
        said.append(ngettext("Browsers can now be remembered for %(count)d day.",
                             "Browsers can now be remembered for %(count)d days.", days) % {"count": days}
                    if days else _("Browsers are no longer remembered in this account."))
    if "allow_passkeys" in changed:
        said.append(_("People in this account can now sign in with a passkey alone.") if account.allow_passkeys
                    else _("Passkey sign-in is now off in this account: a passkey can still be "
                           "the second step after the password."))
    return said


def account_user_or_404(request, user_id, action: str):
    try:
        return recovery.account_user(request.user, user_id, origin(request), action)
    except NotAccountAdmin as error:
        raise PermissionDenied(error.message) from None
    except NotFound:
        # Another account's user looks exactly like no user at all (ASVS 8.2.2).
        raise Http404() from None


@sensitive_post_parameters("password", "code")
@require_http_methods(["GET", "HEAD", "POST"])
@signed_in_required
def disable_two_factor(request, user_id: int):
    target = account_user_or_404(request, user_id, "disable_two_factor")
    context = {"target": target, "target_has_2fa": enabled(target),
               "is_self": target.pk == request.user.pk, **step_up_context(request)}
    need_code = context["admin_has_2fa"] and not context["step_up_fresh"]
    if request.method != "POST":
        return render(request, DISABLE_TEMPLATE, {**context, "form": StepUpForm(need_code=need_code)})
    form = context["form"] = StepUpForm(request.POST, need_code=need_code)
    if not form.is_valid():
        return render(request, DISABLE_TEMPLATE, context, status=400)
    try:
        recovery.admin_disable_two_factor(request.user, user_id, form.cleaned_data["reason"],
                                          form.cleaned_data["password"], origin(request),
                                          code=form.cleaned_data.get("code"),
                                          second_factor_fresh=context["step_up_fresh"])
    except NotAccountAdmin as error:
        raise PermissionDenied(error.message) from None
    except NotFound:
        raise Http404() from None
    except Throttled as error:
        return render_throttled(request, DISABLE_TEMPLATE, context, error)
    except InvalidInput as error:
        form.add_error("reason", error.message)
        return render(request, DISABLE_TEMPLATE, context, status=status_for(error))
    except WrongPassword as error:
        form.add_error("password", error.message)
        return render(request, DISABLE_TEMPLATE, context, status=status_for(error))
    except ServiceError as error:
        if error.code == "approval_pending":  # the account's second-admin rule (recovery_passes)
            messages.info(request, error.message)
            return redirect("web:users")
        if not step_up_error(form, error):
            context["page_error"] = error.message
        return render(request, DISABLE_TEMPLATE, context, status=status_for(error))
    signin_state.stepped_up(request, form.cleaned_data.get("code"))
    messages.success(request, _("Two-factor authentication is off for %(login)s. They have been told by e-mail.")
                     % {"login": target.login})
    return redirect("web:users")
