"""What every transport needs from HTTP: the client's address and user agent, and absolute links.

Absolute links (the password-reset mail) come from the configured public URL
(TWOSTEP_PUBLIC_URL), never from the request: the Host header and port are the client's to
choose, and a link built from them can be made to point at an attacker's server.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.urls import reverse

from .services.audit import Origin


def _valid_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """Return the client's address; X-Forwarded-For counts only from a trusted proxy.

    Walking the header from the right and stopping at the first untrusted hop means a client
    cannot choose its own address by sending the header itself.
    """
    remote = _valid_ip(request.META.get("REMOTE_ADDR", ""))
    trusted = set(settings.TWOSTEP_TRUSTED_PROXIES)
    if remote is None or remote not in trusted:
        return remote
    hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        address = _valid_ip(hop)
        if address is None:
            return remote
        if address not in trusted:
            return address
    return remote


def origin(request) -> Origin:
    return Origin(ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")[:300])


def public_url(path: str) -> str:
    """Return the absolute URL of `path` (which starts with /) under TWOSTEP_PUBLIC_URL."""
    return settings.TWOSTEP_PUBLIC_URL + path


def password_reset_url(uidb64: str, token: str) -> str:
    """Return the link a password-reset mail carries."""
    return public_url(reverse("web:password_reset_confirm", args=(uidb64, token)))
