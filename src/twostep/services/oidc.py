"""OpenID Connect: what other applications learn about a sign-in, and the people's side of it.

django-oauth-toolkit speaks the protocol (twostep/oidc/ adapts it); every decision that is
twostep's own is made here, once:

- what an application must see before it gets a code (`requirement`): a sign-in at all, a fresh
  one (prompt=login, max_age), a second factor (acr_values=urn:twostep:mfa, or a client that
  requires two-factor), a first authenticator set up, the person's consent;
- what a sign-in proved, in RFC 8176 words (`auth_facts`), kept with the code and the refresh
  token so that every ID token made from them says the same;
- the claims (`claims`), with a `sub` that is random, opaque and stable;
- consents, "Apps with access", and revoking an application's tokens (also when the person
  signs out everywhere, changes the password or loses two-factor authentication);
- the audit events of every step, each naming the application.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext_lazy as _

from ..core import clock
from ..models import (
    OAuthAccessToken,
    OAuthClient,
    OAuthConsent,
    OAuthGrant,
    OAuthIDToken,
    OAuthRefreshToken,
    User,
)
from . import audit
from .audit import Origin, Type
from .errors import NotFound
from .factors import enabled

MFA = "urn:twostep:mfa"
SCOPES = ("openid", "profile", "email", "offline_access")

# What an authorization request needs before a code is issued (`requirement`).
READY = "ready"
SIGN_IN = "sign_in"  # no full sign-in in this session (or a half-done one)
FRESH_SIGN_IN = "fresh_sign_in"  # prompt=login, max_age, or a second factor this session lacks
SET_UP_SECOND_FACTOR = "set_up_second_factor"  # a second factor is asked for; the user has none
CONSENT = "consent"


# The subject ---------------------------------------------------------------------------------

def subject(user: User) -> str:
    """Return the user's `sub`: 32 random bytes, made once, never the login or the row id."""
    if not user.oidc_subject:
        value = secrets.token_urlsafe(32)
        # Two first sign-ins at once must agree on one subject: the first write wins.
        User.objects.filter(pk=user.pk, oidc_subject="").update(oidc_subject=value)
        user.oidc_subject = User.objects.values_list("oidc_subject", flat=True).get(pk=user.pk)
    return user.oidc_subject


# What a sign-in proved -------------------------------------------------------------------------

@dataclass(frozen=True)
class AuthFacts:
    amr: tuple[str, ...]
    acr: str
    auth_time: datetime | None


def auth_facts(proof: dict) -> AuthFacts:
    """Turn what a session proved (signin.proved) into amr, acr and auth_time for an ID token.

    amr after RFC 8176: pwd, otp, hwk or swk (a key, "user" when it verified the person), kba (a
    backup code or an admin's one-time pass), mfa with two factors; acr is urn:twostep:mfa then.
    """
    amr = tuple(value for value in proof.get("amr") or () if isinstance(value, str))
    at = proof.get("auth_time")
    when = datetime.fromtimestamp(at, tz=UTC) if isinstance(at, int | float) else None
    return AuthFacts(amr, MFA if "mfa" in amr else "", when)


def _stored(amr, acr, auth_time) -> AuthFacts:
    return AuthFacts(tuple(amr or ()), acr or "", auth_time)


def grant_facts(grant: OAuthGrant) -> AuthFacts:
    return _stored(grant.amr, grant.acr, grant.auth_time)


def refresh_facts(token: OAuthRefreshToken) -> AuthFacts:
    return _stored(token.amr, token.acr, token.auth_time)


# What a request needs --------------------------------------------------------------------------

@dataclass(frozen=True)
class Requirement:
    need: str
    # For FRESH_SIGN_IN: the sign-in must be after this time (epoch seconds), and need a second factor.
    after: float | None = None
    second_factor: bool = False


def wants_mfa(client: OAuthClient, acr_values: str) -> bool:
    return client.require_two_factor or MFA in (acr_values or "").split()


def requirement(*, signed_in: User | None, proof: dict, client: OAuthClient, scopes, prompt: set[str],
                max_age: int | None, acr_values: str, signed_in_after: float | None) -> Requirement:
    """Decide what an authorization request needs before a code can be issued.

    `signed_in_after` is a time this request already sent the person to sign in again at (the
    authorize URL carries it back); a sign-in since then satisfies prompt=login and max_age.
    """
    if signed_in is None:
        return Requirement(SIGN_IN, second_factor=wants_mfa(client, acr_values))
    now = clock.now()
    auth_time = proof.get("auth_time") or 0
    mfa = wants_mfa(client, acr_values)
    if signed_in_after is not None and auth_time < min(signed_in_after, now):
        return Requirement(FRESH_SIGN_IN, after=min(signed_in_after, now), second_factor=mfa)
    if signed_in_after is None and ("login" in prompt or (max_age is not None and now - auth_time > max_age)):
        return Requirement(FRESH_SIGN_IN, after=now, second_factor=mfa)
    if mfa and "mfa" not in (proof.get("amr") or ()):
        if not enabled(signed_in):
            return Requirement(SET_UP_SECOND_FACTOR)
        return Requirement(FRESH_SIGN_IN, after=now, second_factor=True)
    if not client.skip_authorization and not has_consent(signed_in, client, scopes):
        return Requirement(CONSENT)
    return Requirement(READY)


# Consent -------------------------------------------------------------------------------------

def has_consent(user: User, client: OAuthClient, scopes) -> bool:
    row = OAuthConsent.objects.filter(user=user, client=client).first()
    return row is not None and set(scopes) <= set(row.scope.split())


def authorized(user: User, client: OAuthClient, scopes, origin: Origin, *, consented: bool) -> None:
    """Note a code issued to an application: the consent (or a trusted app's use) and the event."""
    now = clock.utcnow()
    with transaction.atomic():
        row, created = OAuthConsent.objects.select_for_update().get_or_create(
            user=user, client=client, defaults={"scope": " ".join(sorted(set(scopes))), "granted_at": now})
        if not created and not set(scopes) <= set(row.scope.split()):
            row.scope = " ".join(sorted(set(row.scope.split()) | set(scopes)))
            row.save(update_fields=["scope"])
        if consented:
            audit.record(Type.APP_CONSENTED, user=user, actor=user, origin=origin, **_app(client),
                         scope=" ".join(scopes))
        audit.record(Type.APP_AUTHORIZED, user=user, actor=user, origin=origin, **_app(client))


def denied(user: User, client: OAuthClient, origin: Origin) -> None:
    audit.record(Type.APP_DENIED, user=user, actor=user, origin=origin, **_app(client))


def _app(client: OAuthClient) -> dict:
    return {"app": client.name or client.client_id, "client_id": client.client_id}


# Tokens --------------------------------------------------------------------------------------

def token_issued(user: User | None, client: OAuthClient, origin: Origin, *, refreshed: bool) -> None:
    """Audit a token the token endpoint handed out, and note when the application last used it."""
    if user is None:
        return
    OAuthConsent.objects.filter(user=user, client=client).update(last_used_at=clock.utcnow())
    audit.record(Type.APP_TOKEN_REFRESHED if refreshed else Type.APP_TOKEN_ISSUED, user=user, origin=origin,
                 **_app(client))


def revoke_family(family) -> int:
    """Revoke every token made from one authorization code (a replayed code, RFC 6749 §4.1.2)."""
    with transaction.atomic():
        refresh = OAuthRefreshToken.objects.filter(token_family=family)
        refresh.filter(revoked__isnull=True).update(revoked=clock.utcnow(), access_token=None)
        access = OAuthAccessToken.objects.filter(family=family)
        id_tokens = list(access.exclude(id_token=None).values_list("id_token_id", flat=True))
        count = access.count()
        access.delete()
        OAuthIDToken.objects.filter(pk__in=id_tokens).delete()
    return count


def code_replayed(grant: OAuthGrant, origin: Origin) -> None:
    """A code came back after it was redeemed: revoke what it gave, and say so in the audit log."""
    revoked = revoke_family(grant.family)
    audit.record(Type.APP_CODE_REPLAYED, user=grant.user, origin=origin, **_app(grant.application),
                 revoked=revoked)


def _revoke_tokens(user: User, client: OAuthClient | None = None) -> int:
    access = OAuthAccessToken.objects.filter(user=user)
    refresh = OAuthRefreshToken.objects.filter(user=user, revoked__isnull=True)
    id_tokens = OAuthIDToken.objects.filter(user=user)
    grants = OAuthGrant.objects.filter(user=user, redeemed_at__isnull=True)
    if client is not None:
        access, refresh = access.filter(application=client), refresh.filter(application=client)
        id_tokens, grants = id_tokens.filter(application=client), grants.filter(application=client)
    count = access.count()
    refresh.update(revoked=clock.utcnow(), access_token=None)
    access.delete()
    id_tokens.delete()
    grants.delete()
    return count


def revoke_user_tokens(user: User, origin: Origin | None = None, *, reason: str) -> int:
    """Revoke every token and pending code of the user, for every application (consents stay).

    Called where every session of the user ends: signing out everywhere, a new password, two-factor
    authentication switched off by anyone. Each application that lost tokens is named in the audit
    log. The caller holds the transaction.
    """
    clients = OAuthClient.objects.filter(pk__in=OAuthAccessToken.objects.filter(user=user)
                                         .values("application_id")).order_by("pk")
    named = list(clients)
    count = _revoke_tokens(user)
    for client in named:
        audit.record(Type.APP_REVOKED, user=user, origin=origin, by=reason, **_app(client))
    return count


def signed_out_of_app(user: User, client: OAuthClient | None, origin: Origin) -> None:
    """RP-initiated logout: that application's tokens end with the sign-in (other apps keep theirs)."""
    with transaction.atomic():
        if client is not None:
            _revoke_tokens(user, client)
        audit.record(Type.APP_SIGNED_OUT, user=user, actor=user, origin=origin,
                     **(_app(client) if client is not None else {}))


def token_owner(raw, *, refresh_too: bool = False) -> OAuthAccessToken | OAuthRefreshToken | None:
    """The token (with its user and application) whose value is `raw`: an access token, or with
    `refresh_too` a refresh token not yet revoked. Tokens are found by their checksum."""
    if not isinstance(raw, str) or not raw:
        return None
    checksum = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    found = OAuthAccessToken.objects.select_related("user", "application").filter(token_checksum=checksum).first()
    if found is None and refresh_too:
        found = (OAuthRefreshToken.objects.select_related("user", "application")
                 .filter(token_checksum=checksum, revoked__isnull=True).first())
    return found


def token_revoked(user: User | None, client: OAuthClient, origin: Origin) -> None:
    """The application revoked a token itself (RFC 7009)."""
    if user is not None:
        audit.record(Type.APP_REVOKED, user=user, origin=origin, by="app", **_app(client))


def prune() -> None:
    """Remove expired codes and tokens, and refresh tokens revoked long enough ago (the worker, hourly)."""
    from oauth2_provider.models import clear_expired

    clear_expired()


# Apps with access ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AppAccess:
    client_id: str
    name: str
    granted_at: datetime
    last_used_at: datetime | None
    scopes: tuple[str, ...]


def apps_with_access(user: User) -> list[AppAccess]:
    """The applications the person let in (or signed in to, when trusted), newest first."""
    rows = OAuthConsent.objects.filter(user=user).select_related("client").order_by("-granted_at", "-pk")
    token_use = dict(OAuthAccessToken.objects.filter(user=user).values("application_id")
                     .annotate(last=Max("created")).values_list("application_id", "last"))
    apps = []
    for row in rows:
        used = max((t for t in (row.last_used_at, token_use.get(row.client_id)) if t is not None), default=None)
        apps.append(AppAccess(row.client.client_id, row.client.name or row.client.client_id, row.granted_at, used,
                              tuple(row.scope.split())))
    return apps


def revoke_app(user: User, client_id: str, origin: Origin) -> AppAccess:
    """The person takes an application's access back: its tokens end and its consent is forgotten."""
    if not isinstance(client_id, str):
        raise NotFound(_NO_APP)
    with transaction.atomic():
        row = OAuthConsent.objects.select_for_update().select_related("client") \
            .filter(user=user, client__client_id=client_id).first()
        if row is None:
            raise NotFound(_NO_APP)
        client = row.client
        access = AppAccess(client.client_id, client.name or client.client_id, row.granted_at, row.last_used_at,
                           tuple(row.scope.split()))
        revoked = _revoke_tokens(user, client)
        row.delete()
        audit.record(Type.APP_REVOKED, user=user, actor=user, origin=origin, by="user", tokens=revoked,
                     **_app(client))
    return access


_NO_APP = _("No such application has access to your account.")


# Claims --------------------------------------------------------------------------------------

def claims(user: User, facts: AuthFacts | None) -> dict:
    """The claims about a person, by the scope that releases each (`claim_scopes`)."""
    values = {
        "sub": subject(user),
        "preferred_username": user.login,
        "name": user.login,
        "account": user.account.name,
        "groups": ["admin"] if user.is_account_admin else [],
        "email": user.email,
        "email_verified": False,
    }
    if facts is not None:
        if facts.amr:
            values["amr"] = list(facts.amr)
        if facts.acr:
            values["acr"] = facts.acr
        if facts.auth_time is not None:
            values["auth_time"] = int(facts.auth_time.timestamp())
    return values


# Which scope releases which claim (`sub` and the facts of the sign-in come with `openid`).
CLAIM_SCOPES = {
    "sub": "openid", "amr": "openid", "acr": "openid", "auth_time": "openid",
    "preferred_username": "profile", "name": "profile", "account": "profile", "groups": "profile",
    "email": "email", "email_verified": "email",
}
