"""django-oauth-toolkit's request validator, with what twostep adds to it.

- PKCE is required of public clients only (confidential ones may use it).
- An authorization code is redeemed once, whatever the number of processes: the token request
  runs in one transaction (views.TokenView) that locks the code's row before anything is read;
  a code that is gone, expired or already redeemed is `invalid_grant`, never an exception.
  A code redeemed by an earlier request is a replay: the tokens made from it are revoked (RFC
  6749 §4.1.2). A request that was already waiting while the code was being redeemed is a
  duplicate of that redemption, not a replay: it is refused and revokes nothing.
- What the sign-in proved (amr, acr, auth_time) goes from the session into the code, from the
  code into the refresh token, and from either into the ID token; a refresh token is issued only
  with the scope offline_access, and every token of one code shares the code's family.
- The claims and their scopes are services.oidc's.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime

from django.db import connection
from oauth2_provider.models import get_grant_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from ..core import clock
from ..services import oidc, signing_keys

Grant = get_grant_model()


# The token request being answered (views.TokenView sets it): when it began, and the code it
# found already redeemed by an earlier request, whose tokens are then revoked.
token_request: ContextVar[dict | None] = ContextVar("token_request", default=None)


def _started() -> datetime:
    noted = token_request.get()
    return noted["started"] if noted else clock.utcnow()


def _note_replay(grant) -> None:
    noted = token_request.get()
    if noted is not None:
        noted["replayed"] = grant


class Validator(OAuth2Validator):
    oidc_claim_scope = oidc.CLAIM_SCOPES

    def _check_secret(self, provided_secret, stored_secret):
        # The token view checks a client's secret once, before its transaction, so that the hash
        # holds no database lock; the answer is kept for this request and not hashed again.
        noted = token_request.get()
        answers = noted.get("secrets") if noted else None
        if answers is None:
            return super()._check_secret(provided_secret, stored_secret)
        pair = (provided_secret, stored_secret)
        if pair not in answers:
            answers[pair] = super()._check_secret(provided_secret, stored_secret)
        return answers[pair]

    # PKCE ----------------------------------------------------------------------------------

    def is_pkce_required(self, client_id, request):
        client = getattr(request, "client", None)
        if client is None or getattr(client, "client_id", None) != client_id:
            client = self._load_application(client_id, request)
        return client is None or client.client_type == client.CLIENT_PUBLIC

    # prompt=none: views.AuthorizeView decides (services.oidc.requirement), after validation.

    def validate_silent_login(self, request):
        return True

    def validate_silent_authorization(self, request):
        return True

    # The code, once ------------------------------------------------------------------------

    def _grant(self, code, request):
        """The code's row, locked for this token request; None when there is none for this client."""
        cached = getattr(request, "twostep_grant", None)
        if cached is not None and cached.code == code:
            return cached
        rows = Grant.objects.select_related("user", "application").filter(code=code, application=request.client)
        if connection.features.has_select_for_update:
            rows = rows.select_for_update(of=("self",))
        grant = rows.first()
        if grant is not None:
            request.twostep_grant = grant
        return grant

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        if not isinstance(code, str):
            return False
        grant = self._grant(code, request)
        if grant is None:
            return False
        if grant.redeemed_at is not None:
            if grant.redeemed_at < _started():
                _note_replay(grant)  # views.TokenView revokes its tokens once this answer is out
            return False
        if grant.is_expired() or not grant.user.is_active:
            return False
        request.scopes = grant.scope.split(" ")
        request.user = grant.user
        if grant.nonce:
            request.nonce = grant.nonce
        request.twostep_facts = oidc.grant_facts(grant)
        request.twostep_family = grant.family
        return True

    def get_code_challenge(self, code, request):
        grant = self._grant(code, request)
        if grant is None:
            raise errors.InvalidGrantError(request=request)
        return grant.code_challenge or None

    def get_code_challenge_method(self, code, request):
        grant = self._grant(code, request)
        if grant is None:
            raise errors.InvalidGrantError(request=request)
        return grant.code_challenge_method or None

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, *args, **kwargs):
        request = kwargs.get("request") or (args[0] if args else None)
        grant = self._grant(code, request) if request is not None else None
        if grant is None:
            return False
        return grant.redirect_uri_allowed(redirect_uri)

    def get_authorization_code_nonce(self, client_id, code, redirect_uri, request):
        grant = self._grant(code, request)
        return (grant.nonce or None) if grant is not None else None

    def get_authorization_code_scopes(self, client_id, code, redirect_uri, request):
        # Asked before the client is authenticated, to choose OpenID Connect's grant: no lock yet.
        if not isinstance(code, str):
            return []
        scope = Grant.objects.filter(code=code).values_list("scope", flat=True).first()
        return scope.split() if scope else []

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        # Kept, marked redeemed, so that its second use is recognised (and its tokens revoked).
        updated = Grant.objects.filter(code=code, application=request.client, redeemed_at__isnull=True) \
            .update(redeemed_at=clock.utcnow())
        if not updated:
            raise errors.InvalidGrantError(request=request)

    def _create_authorization_code(self, request, code, expires=None):
        grant = super()._create_authorization_code(request, code, expires)
        facts = getattr(request, "twostep_facts", None)
        if facts is not None:
            grant.amr, grant.acr, grant.auth_time = list(facts.amr), facts.acr, facts.auth_time
            grant.save(update_fields=["amr", "acr", "auth_time"])
        return grant

    # Tokens --------------------------------------------------------------------------------

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        if not isinstance(refresh_token, str):
            return False
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if valid:
            token = request.refresh_token_instance
            if not token.user.is_active:
                return False
            request.twostep_facts = oidc.refresh_facts(token)
            request.twostep_family = token.token_family
        return valid

    def save_bearer_token(self, token, request, *args, **kwargs):
        if "offline_access" not in (request.scopes or []):
            token.pop("refresh_token", None)  # a refresh token only for offline_access
        return super().save_bearer_token(token, request, *args, **kwargs)

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        access = super()._create_access_token(expires, request, token, source_refresh_token)
        family = getattr(request, "twostep_family", None)
        if family is not None:
            access.family = family
            access.save(update_fields=["family"])
        return access

    def _create_refresh_token(self, request, refresh_token_code, access_token, previous_refresh_token):
        refresh = super()._create_refresh_token(request, refresh_token_code, access_token, previous_refresh_token)
        facts = getattr(request, "twostep_facts", None)
        family = getattr(request, "twostep_family", None)
        changed = []
        if facts is not None:
            refresh.amr, refresh.acr, refresh.auth_time = list(facts.amr), facts.acr, facts.auth_time
            changed += ["amr", "acr", "auth_time"]
        if family is not None and previous_refresh_token is None:
            refresh.token_family = family
            changed.append("token_family")
        if changed:
            refresh.save(update_fields=changed)
        return refresh

    # Claims --------------------------------------------------------------------------------

    def get_claim_dict(self, request):
        return oidc.claims(request.user, getattr(request, "twostep_facts", None))

    def get_discovery_claims(self, request):
        return list(oidc.CLAIM_SCOPES)

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expires = super().get_id_token_dictionary(token, token_handler, request)
        facts = getattr(request, "twostep_facts", None)
        if facts is not None and facts.auth_time is not None:
            claims["auth_time"] = int(facts.auth_time.timestamp())  # the sign-in's, not the last login's
        return claims, expires

    def _get_key_for_token(self, token):
        # Verify with every published key (jwcrypto picks one by `kid`), not the active one only.
        if super()._get_key_for_token(token) is None:
            return None
        return signing_keys.verification_keys()

    def get_userinfo_claims(self, request):
        claims = super().get_userinfo_claims(request)
        for fact in ("amr", "acr", "auth_time"):  # facts of one sign-in belong in its ID token only
            claims.pop(fact, None)
        return claims
