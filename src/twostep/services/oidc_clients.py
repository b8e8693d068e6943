"""The applications (OpenID Connect clients) the operator registers: `twostep client …`.

A client has a name, its redirect URIs (exact match), its post-logout URIs, a type (public: a
single-page or native app that keeps no secret and must use PKCE; confidential: a server with a
secret), whether it is trusted (no consent page) and whether every sign-in to it needs a second
factor. Its secret is shown once, at creation or rotation, and kept only as a password hash.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import transaction
from django.utils.translation import gettext as _
from oauth2_provider.generators import generate_client_secret

from ..models import OAuthClient
from .errors import InvalidInput, NotFound

_LOOPBACK_NAMES = {"localhost"}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_uri(uri: str, what: str | None = None) -> str:
    """Return the URI if an application may be sent back to it; refuse it with one clear sentence.

    https anywhere; http only to this machine (localhost, 127.0.0.1, ::1); no fragment, no
    user name or password in it, no spaces (the list is kept space-separated).
    """
    what = what or _("redirect URI")
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput(_("The %(what)s is empty.") % {"what": what})
    uri = uri.strip()
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        parts.port  # noqa: B018 — raises ValueError on a port that is not a number
    except ValueError:
        raise InvalidInput(_("The %(what)s %(uri)s is not a valid address.") % {"what": what, "uri": uri}) from None
    if any(ch.isspace() for ch in uri) or not host:
        raise InvalidInput(_("The %(what)s %(uri)s is not a valid address.") % {"what": what, "uri": uri})
    if "#" in uri:
        raise InvalidInput(_("The %(what)s %(uri)s has a fragment (#…); it must not.") % {"what": what, "uri": uri})
    if parts.username or parts.password:
        raise InvalidInput(_("The %(what)s %(uri)s must not hold a user name or password.") % {"what": what,
                                                                                             "uri": uri})
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(host)):
        return uri
    raise InvalidInput(_("The %(what)s %(uri)s must use https (http only for localhost or 127.0.0.1).")
                       % {"what": what, "uri": uri})


@dataclass(frozen=True)
class ClientFacts:
    client_id: str
    name: str
    public: bool
    trusted: bool
    require_two_factor: bool
    redirect_uris: tuple[str, ...]
    post_logout_uris: tuple[str, ...]
    created_at: object
    secret: str | None = None  # only right after creation or rotation

    def as_json(self) -> dict:
        data = {"client_id": self.client_id, "name": self.name, "type": "public" if self.public else "confidential",
                "trusted": self.trusted, "require_2fa": self.require_two_factor,
                "redirect_uris": list(self.redirect_uris), "post_logout_uris": list(self.post_logout_uris),
                "created_at": self.created_at.isoformat() if self.created_at else None}
        if self.secret is not None:
            data["client_secret"] = self.secret
        return data


def _facts(client: OAuthClient, secret: str | None = None) -> ClientFacts:
    return ClientFacts(client.client_id, client.name, client.client_type == OAuthClient.CLIENT_PUBLIC,
                       client.skip_authorization, client.require_two_factor, tuple(client.redirect_uris.split()),
                       tuple(client.post_logout_redirect_uris.split()), client.created, secret)


def create(name: str, redirect_uris: list[str], *, post_logout_uris: list[str] = (), public: bool = False,
           trusted: bool = False, require_two_factor: bool = False) -> ClientFacts:
    """Register an application; return it with its secret (confidential only), shown this once."""
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise InvalidInput(_("Give the application a name (at most 255 characters)."))
    if not redirect_uris:
        raise InvalidInput(_("Give at least one redirect URI."))
    uris = list(dict.fromkeys(check_uri(uri) for uri in redirect_uris))
    logout_uris = list(dict.fromkeys(check_uri(uri, _("post-logout URI")) for uri in post_logout_uris))
    secret = None if public else generate_client_secret()
    # A browser application calls the token endpoint from its own origin (CORS): the origins of
    # its redirect URIs are allowed.
    origins = list(dict.fromkeys(f"{urlsplit(uri).scheme}://{urlsplit(uri).netloc}" for uri in uris)) if public else []
    with transaction.atomic():
        client = OAuthClient(
            name=name, redirect_uris=" ".join(uris), post_logout_redirect_uris=" ".join(logout_uris),
            client_type=OAuthClient.CLIENT_PUBLIC if public else OAuthClient.CLIENT_CONFIDENTIAL,
            authorization_grant_type=OAuthClient.GRANT_AUTHORIZATION_CODE, algorithm=OAuthClient.RS256_ALGORITHM,
            skip_authorization=trusted, require_two_factor=require_two_factor, hash_client_secret=True,
            client_secret=secret or "", allowed_origins=" ".join(origins),
        )
        client.save()  # the secret is hashed as it is saved (django-oauth-toolkit's ClientSecretField)
    return _facts(client, secret)


def get(client_id: str) -> OAuthClient:
    """The application registered with `client_id`; NotFound if there is none."""
    client = OAuthClient.objects.filter(client_id=client_id).first() if isinstance(client_id, str) else None
    if client is None:
        raise NotFound(_("No application with the client id %(id)s.") % {"id": client_id})
    return client


def listing() -> list[ClientFacts]:
    return [_facts(client) for client in OAuthClient.objects.order_by("created", "pk")]


def show(client_id: str) -> ClientFacts:
    return _facts(get(client_id))


def remove(client_id: str) -> ClientFacts:
    """Remove an application: its codes, tokens and consents go with it."""
    with transaction.atomic():
        client = get(client_id)
        facts = _facts(client)
        client.delete()
    return facts


def rotate_secret(client_id: str) -> ClientFacts:
    """Give a confidential application a new secret (shown once); the old one stops working at once."""
    with transaction.atomic():
        client = OAuthClient.objects.select_for_update().filter(client_id=client_id).first() \
            if isinstance(client_id, str) else None
        if client is None:
            raise NotFound(_("No application with the client id %(id)s.") % {"id": client_id})
        if client.client_type == OAuthClient.CLIENT_PUBLIC:
            raise InvalidInput(_("%(name)s is a public application: it has no secret.") % {"name": client.name})
        secret = generate_client_secret()
        client.client_secret = secret
        client.save(update_fields=["client_secret", "updated"])
    return _facts(client, secret)

