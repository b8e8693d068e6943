"""Ending sessions, forgetting remembered browsers, and the account's remember-browser policy."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from ... import signin_state
from ...http import origin
from ...services import sessions, trusted_browsers
from ...services.errors import NotFound
from .common import signed_in_required


@require_POST
@signed_in_required
def end_session(request, session_id: int):
    try:
        current = sessions.end_session(request.user, session_id, origin(request),
                                       request.session.session_key)
    except NotFound:
        raise Http404() from None
    if current:
        signin_state.sign_out(request)
        messages.success(request, _("You have signed out."))
        return redirect("web:login")
    messages.success(request, _("That session is signed out."))
    return redirect("web:security")


@require_POST
@signed_in_required
def end_other_sessions(request):
    count = sessions.end_other_sessions(request.user, origin(request), request.session.session_key)
    messages.success(request, ngettext("%(count)d other session is signed out.",
                                       "%(count)d other sessions are signed out.", count) % {"count": count})
    return redirect("web:security")


@require_POST
@signed_in_required
def forget_browser(request, browser_id: int):
    try:
        trusted_browsers.forget(request.user, browser_id, origin(request))
    except NotFound:
        raise Http404() from None
    messages.success(request, _("That browser is forgotten: it will ask for a code again."))
    return redirect("web:security")


@require_POST
@signed_in_required
def forget_browsers(request):
    trusted_browsers.forget_all(request.user, origin(request))
    messages.success(request, _("Every remembered browser is forgotten: they will ask for a code again."))
    return redirect("web:security")
