"""The page that shows a new set of backup codes until the person says they have saved them.

Making a set (switching 2FA on, a new set, a new authenticator after a recovery) answers with a
redirect here (post/redirect/get), so a reload, the Back button or the language switch shows
the same codes again instead of "Confirm form resubmission" or an empty page. The set waits in
this session only, encrypted (`backup_codes.seal_for_session`), and only while it is the user's
current set, unsaved, and at most SHOWN_AGAIN_MINUTES old; signing out forgets it. The page is
`no-store` (ASVS 14.3.2); the download is a `data:` link in the page, so saving the file needs
no second request. "I have saved my backup codes" records `saved_at` and forgets the copy.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from ... import codes_state
from ...http import origin
from ...services.errors import TwoFactorDisabled
from ...services.factors import backup_codes
from ...services.factors.backup_codes import NewCodes
from .common import signed_in_required

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(issuer: str, login: str) -> str:
    """Return a download name such as ``twostep-backup-codes-alice.txt`` (ASCII, no path signs)."""

    def safe(text: str, fallback: str) -> str:
        return _UNSAFE.sub("_", text).strip("._") or fallback

    return f"{safe(issuer, 'twostep')}-backup-codes-{safe(login, 'user')}.txt"


def render_codes(request, user, new: NewCodes, *, first_time: bool):
    """Keep the new set for this session and go to the page that shows it."""
    codes_state.keep(request, user, new, first_time=first_time)
    return redirect("web:backup_codes_new")


@require_safe
@signed_in_required
def new_codes(request):
    """Show the set this session made, until it is saved; else back to Account security."""
    user = request.user
    new = codes_state.unsaved(request)
    if new is None:
        if backup_codes.is_saved(backup_codes.current_set(user)) is False:
            messages.warning(request, _("Your new backup codes can no longer be shown here. If you did not "
                                        "save them, generate new ones."))
        return redirect("web:security")
    context = {
        "codes": new.codes,
        "generated_at": new.generated_at,
        "issuer": settings.TWOSTEP_ISSUER,
        "account_name": user.account.name,
        "code_login": user.login,
        "first_time": codes_state.first_time(request),
        "codes_text": "\n".join(new.codes),
        "shown_minutes": backup_codes.SHOWN_AGAIN_MINUTES,
    }
    text = render_to_string("twostep/security/codes.txt", context, request=request)
    context["download_href"] = "data:text/plain;charset=utf-8," + quote(text, safe="")
    context["download_name"] = file_name(settings.TWOSTEP_ISSUER, user.login)
    response = render(request, "twostep/security/codes.html", context)
    add_never_cache_headers(response)
    return response


@require_POST
@signed_in_required
def codes_saved(request):
    """Record that the person saved their current set, and stop showing it."""
    try:
        backup_codes.confirm_saved(request.user, origin(request))
    except TwoFactorDisabled:
        return redirect("web:security")
    if codes_state.forget(request):
        messages.success(request, _("Two-factor authentication is on, and your backup codes are saved."))
    else:
        messages.success(request, _("Your backup codes are saved."))
    return redirect("web:security")
