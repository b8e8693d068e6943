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


def _statuses() -> dict:
    from .services import errors
    from .services.admission import Busy
    from .services.keys import UndecryptableSecret
    from .services.passwords import InvalidResetLink
    from .services.recovery_passes import ApprovalPending
    from .services.throttle_store import StoreUnavailable

    return {
        errors.InvalidCredentials: 401,
        errors.Throttled: 429,
        errors.InvalidConfirmationCode: 400,
        errors.InvalidCode: 401,
        errors.NoPendingSignIn: 409,
        errors.NoPendingSetup: 409,
        errors.WrongPassword: 403,
        errors.TwoFactorDisabled: 409,
        errors.TwoFactorAlreadyEnabled: 409,
        errors.TwoFactorRequired: 403,
        errors.NotAccountAdmin: 403,
        errors.AdminNeedsTwoFactor: 403,
        errors.SecondFactorRequired: 403,
        errors.NotFound: 404,
        errors.InvalidInput: 422,
        errors.Conflict: 409,
        errors.PasskeysNotAllowed: 403,
        StoreUnavailable: 503,
        Busy: 503,  # the server is full for a moment, not this client over a rate: not 429
        ApprovalPending: 202,  # not a failure: the action waits for a second admin
        InvalidResetLink: 400,
        UndecryptableSecret: 500,
        errors.ServiceError: 400,
    }


def status_for(error) -> int:
    """Return the HTTP status for a service error (or its class): the one map, for every transport.

    Errors that only a transport can have (no session, no CSRF token) carry their own `status`.
    """
    if not isinstance(error, type) and "status" in vars(error):
        return error.status
    kind = error if isinstance(error, type) else type(error)
    statuses = _statuses()
    for klass in kind.__mro__:
        if "status" in klass.__dict__:
            return klass.__dict__["status"]
        if klass in statuses:
            return statuses[klass]
    return 500


def public_url(path: str) -> str:
    """Return the absolute URL of `path` (which starts with /) under TWOSTEP_PUBLIC_URL."""
    return settings.TWOSTEP_PUBLIC_URL + path


def password_reset_url(uidb64: str, token: str) -> str:
    """Return the link a password-reset mail carries."""
    return public_url(reverse("web:password_reset_confirm", args=(uidb64, token)))


def relying_party(request):
    """Return the WebAuthn relying party for this request (settings, else the host reached)."""
    from .services.factors import webauthn

    return webauthn.relying_party(request.get_host(), request.is_secure())
