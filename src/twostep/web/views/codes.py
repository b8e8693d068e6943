"""The page that shows a new set of backup codes, once.

It is only ever the direct answer to the POST that made the codes: the codes are not kept in
the session or anywhere else on the server, and the page is `no-store` (ASVS 14.3.2). The
download is a `data:` link built into the page, so saving the file needs no second request.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from django.conf import settings
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers

from ...services.factors.backup_codes import NewCodes

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(issuer: str, login: str) -> str:
    """Return a download name such as ``twostep-backup-codes-alice.txt`` (ASCII, no path signs)."""

    def safe(text: str, fallback: str) -> str:
        return _UNSAFE.sub("_", text).strip("._") or fallback

    return f"{safe(issuer, 'twostep')}-backup-codes-{safe(login, 'user')}.txt"


def render_codes(request, user, new: NewCodes, *, first_time: bool):
    """Answer with the codes page for `new` (HTTP 200, never cached)."""
    context = {
        "codes": new.codes,
        "generated_at": new.generated_at,
        "issuer": settings.TWOSTEP_ISSUER,
        "account_name": user.account.name,
        "code_login": user.login,
        "first_time": first_time,
        "codes_text": "\n".join(new.codes),
    }
    text = render_to_string("twostep/security/codes.txt", context, request=request)
    context["download_href"] = "data:text/plain;charset=utf-8," + quote(text, safe="")
    context["download_name"] = file_name(settings.TWOSTEP_ISSUER, user.login)
    response = render(request, "twostep/security/codes.html", context)
    add_never_cache_headers(response)
    return response
