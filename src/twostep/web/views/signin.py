"""The sign-in pages: the password, then a code from the app or a backup code."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from ... import signin_state
from ...core import clock
from ...http import origin
from ...services import factors, signin
from ...services.errors import NoPendingSignIn, ServiceError
from ...services.signin import ANONYMOUS, AUTHENTICATED, SECOND_FACTOR, SETUP_REQUIRED
from ..forms import AppCodeForm, BackupCodeForm, LoginForm
from .common import next_param, next_url, refuse, set_language_cookie, with_next


def signed_in(request, user, target: str):
    """Go on after a full sign-in, in the language the user chose before (on any device)."""
    response = redirect(target)
    if user.language in dict(settings.LANGUAGES):
        set_language_cookie(response, user.language)
    return response


def expired(request, held_login=None):
    """Back to the password after the half sign-in expired, with the login typed in already.

    `held_login`: signin_state.held_login's answer, read by every second-step page before it
    reads the held user (which forgets an expired sign-in); the login is looked up only here.
    """
    login = held_login() if held_login is not None else ""
    if login:
        signin_state.keep_login_hint(request, login)
        messages.info(request, _("The sign-in took too long and was stopped to keep your account safe. "
                                 "Enter your password again to continue."))
    else:
        messages.info(request, NoPendingSignIn.default_message)
    return redirect(with_next("web:login", next_param(request)))


@sensitive_post_parameters("password")
@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def login(request):
    target = next_param(request)
    # An application asked for a fresh sign-in (prompt=login, max_age, a second factor now):
    # the page is shown even to a signed-in person, and a remembered browser does not skip the
    # second step when a second factor is what it asked for.
    reauth = _flag(request, "reauth")
    mfa = _flag(request, "mfa")
    context = {"next": target, "reauth": reauth, "mfa": mfa}
    if request.method != "POST":
        current = signin_state.stage(request)
        if current == AUTHENTICATED and not reauth:
            return redirect(next_url(request))
        # After an expired half sign-in the login typed comes back once, and the cursor goes to
        # the password; an application may suggest the login (login_hint).
        kept = signin_state.take_login_hint(request)
        hint = kept or request.GET.get("login_hint", "")[:150]
        if reauth and request.user.is_authenticated:
            hint = request.user.login
        form = LoginForm(initial={"login": hint} if hint else None)
        if kept:
            form.fields["login"].widget.attrs.pop("autofocus", None)
            form.fields["password"].widget.attrs["autofocus"] = True
        return render(request, "twostep/signin/login.html",
                      {**context, "form": form, "show_sign_out": current != ANONYMOUS})
    form = LoginForm(request.POST)
    context["form"] = form
    if not form.is_valid():
        return render(request, "twostep/signin/login.html", context, status=400)
    try:
        outcome = signin.password(
            signin_state.of(request), form.cleaned_data["login"], form.cleaned_data["password"],
            origin(request), remembered_token=signin_state.remembered_token(request),
            device_cookie=signin_state.device_cookie(request),
        )
    except ServiceError as error:
        return refuse(request, "twostep/signin/login.html", context, error)
    if outcome.stage == AUTHENTICATED:
        return signed_in(request, outcome.user, next_url(request))
    if outcome.stage == SETUP_REQUIRED:
        return redirect("web:setup")
    return redirect(with_next(SECOND_STEP_PAGES[outcome.methods[0]], target))


def _flag(request, name: str) -> bool:
    return (request.POST.get(name) or request.GET.get(name)) == "1"


# The page for each second-step method; the first the user has is where the password step leads.
SECOND_STEP_PAGES = {"webauthn": "web:login_key", "totp": "web:login_code", "backup_code": "web:login_backup_code",
                     "recovery_pass": "web:login_recovery_pass"}


def _second_step_page(request, user, template: str, form, *, status: int = 200, error=None):
    """Show the second step's page for the held `user` (again, with `error`, after a refusal)."""
    context = {"next": next_param(request), "pending_login": user.login,
               "methods": factors.methods(user, clock.utcnow()),
               "remember_days": user.account.remember_browser_days,
               "remember_checked": request.POST.get("remember") == "on",
               "show_sign_out": True,  # someone is half signed in: no need to ask the session again
               "form": form}
    if error is not None:
        return refuse(request, template, context, error, form=form, field="code")
    return render(request, template, context, status=status)


def _second_step(request, method: str, form_class, template: str):
    # A right code needs neither the page's menu nor a second read of the held user: the page is
    # built only when it is shown.
    held = signin_state.held_login(request)  # the session read before pending_user forgets an expired sign-in
    if request.method != "POST":
        user = signin_state.pending_user(request, SECOND_FACTOR)
        if user is None:
            return expired(request, held)
        return _second_step_page(request, user, template, form_class())
    form = form_class(request.POST)
    if not form.is_valid():
        user = signin_state.pending_user(request, SECOND_FACTOR)
        if user is None:
            return expired(request, held)
        return _second_step_page(request, user, template, form, status=400)
    try:
        outcome = signin.second_factor(signin_state.of(request), method, form.cleaned_data["code"],
                                       origin(request))
    except NoPendingSignIn:
        return expired(request, held)
    except ServiceError as error:
        user = signin_state.pending_user(request, SECOND_FACTOR)
        if user is None:
            return expired(request, held)
        return _second_step_page(request, user, template, form, error=error)
    if outcome.recovery:
        # The lost-phone path: say how many codes are left and offer a new authenticator.
        response = signed_in(request, outcome.user, "web:recover")
    else:
        response = signed_in(request, outcome.user, next_url(request))
    if request.POST.get("remember") == "on":  # only now, after both factors (scheb #253)
        signin_state.remember_browser(request, response)
    return response


@sensitive_post_parameters("code")
@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def app_code(request):
    return _second_step(request, "totp", AppCodeForm, "twostep/signin/code.html")


@sensitive_post_parameters("code")
@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
def backup_code(request):
    return _second_step(request, "backup_code", BackupCodeForm, "twostep/signin/backup_code.html")


@require_POST
def logout(request):
    """Sign out (or abandon a half-done sign-in): the session is emptied and its key changes."""
    was_signed_in = request.user.is_authenticated
    signin_state.sign_out(request)
    if was_signed_in:
        messages.success(request, _("You have signed out."))
    return redirect("web:login")
