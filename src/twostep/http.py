"""What every transport needs from an HTTP request: the client's address and user agent."""

from __future__ import annotations

import ipaddress

from django.conf import settings

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


def relying_party(request):
    """Return the WebAuthn relying party for this request (settings, else the host reached)."""
    from .services.factors import webauthn

    return webauthn.relying_party(request.get_host(), request.is_secure())
