"""The OpenID Connect endpoints: django-oauth-toolkit's protocol, twostep's sign-in and policy.

A transport like web/ and api/: it reads the request, asks services/oidc.py what the request
needs, and answers. The person signs in on twostep's own pages (password, second step, setup
where required) and comes back here with `next`; a half-signed-in session never gets a code.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import View
from oauth2_provider import views as dot
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request as OAuthlibRequest

from .. import signin_state
from ..core import clock
from ..http import origin
from ..services import oidc, oidc_clients, signing_keys
from ..services.errors import NotFound
from ..services.signin import AUTHENTICATED
from .validator import token_request

logger = logging.getLogger(__name__)

AFTER = "twostep_after"  # the time this request sent the person to sign in again (see services.oidc)
CONSENT_TEMPLATE = "twostep/oidc/consent.html"
ERROR_TEMPLATE = "twostep/oidc/error.html"


def _replace_query(url: str, drop=(), **add) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in drop and k not in add]
    query += [(k, str(v)) for k, v in add.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


@method_decorator(never_cache, name="dispatch")
class AuthorizeView(dot.AuthorizationView):
    """/oauth/authorize: the authorization code flow, after twostep's sign-in and its policy."""

    template_name = CONSENT_TEMPLATE

    def dispatch(self, request, *args, **kwargs):
        # Validate the request before anything else (not django-oauth-toolkit's "sign in first"):
        # an unknown client or a wrong redirect_uri is an error page, whoever asks.
        self.oauth2_data = {}
        return View.dispatch(self, request, *args, **kwargs)

    def error_response(self, error, application, **kwargs):
        redirect, response = dot.mixins.OAuthLibMixin.error_response(self, error, **kwargs)
        if redirect:
            return self.redirect(response["url"], application)
        failure = response["error"]
        return render(self.request, ERROR_TEMPLATE, {"error": failure.error,
                                                      "description": failure.description},
                      status=failure.status_code if failure.status_code < 500 else 400)

    def get(self, request, *args, **kwargs):
        return self._authorize(request, decision=None)

    def post(self, request, *args, **kwargs):
        # The consent form posts back to the same address: the request is read from the query
        # again and checked again, so nothing in the form can change what is authorized.
        decision = request.POST.get("decision")
        return self._authorize(request, decision=decision if decision in ("allow", "deny") else None)

    def _authorize(self, request, decision):
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        client = oidc_clients.get(credentials["client_id"])
        query = request.GET
        prompt = set(query.get("prompt", "").split())
        try:
            max_age = int(query["max_age"]) if query.get("max_age", "") != "" else None
            after = float(query[AFTER]) if query.get(AFTER) else None
            if max_age is not None and max_age < 0:
                raise ValueError
        except ValueError:
            return self._to_client(credentials, client, "invalid_request", "max_age must be a whole number")
        if "none" in prompt and len(prompt) > 1:
            return self._to_client(credentials, client, "invalid_request", "prompt=none stands alone")
        signed_in = request.user if signin_state.stage(request) == AUTHENTICATED else None
        need = oidc.requirement(signed_in=signed_in, proof=signin_state.proved(request), client=client,
                                scopes=scopes, prompt=prompt, max_age=max_age,
                                acr_values=query.get("acr_values", ""), signed_in_after=after)
        if need.need != oidc.READY and not (need.need == oidc.CONSENT and decision):
            if "none" in prompt:
                error = {oidc.CONSENT: "consent_required", oidc.SET_UP_SECOND_FACTOR: "interaction_required"}
                return self._to_client(credentials, client, error.get(need.need, "login_required"))
            # The sign-in and consent pages' forms end, by redirects, at this validated address.
            signin_state.allow_form_target(request, credentials["redirect_uri"])
            if need.need == oidc.CONSENT:
                return self._consent_page(request, client, scopes)
            return self._sign_in(request, need, client)
        if decision == "deny":
            oidc.denied(request.user, client, origin(request))
            return self._to_client(credentials, client, "access_denied", "The person did not allow access")
        facts = oidc.auth_facts(signin_state.proved(request))
        credentials["twostep_facts"] = facts
        try:
            uri, _headers, _body, _status = self.create_authorization_response(
                request=request, scopes=" ".join(scopes), credentials=credentials, allow=True)
        except OAuthToolkitError as error:
            return self.error_response(error, client)
        oidc.authorized(request.user, client, scopes, origin(request), consented=decision == "allow")
        signin_state.forget_return(request)
        return self.redirect(uri, client)

    def _to_client(self, credentials, client, error: str, description: str = ""):
        """Answer the client at its (validated) redirect_uri with an error, and its state."""
        params = {"error": error}
        if description:
            params["error_description"] = description
        if credentials.get("state"):
            params["state"] = credentials["state"]
        return self.redirect(_replace_query(credentials["redirect_uri"], **params), client)

    def _consent_page(self, request, client, scopes):
        descriptions = {"openid": None, "profile": "profile", "email": "email", "offline_access": "offline"}
        return render(request, CONSENT_TEMPLATE, {
            "client": client, "scopes": [descriptions[s] for s in scopes if descriptions.get(s)],
            "action": request.get_full_path(), "signed_in_as": request.user.login,
        })

    def _sign_in(self, request, need, client):
        """Send the person to sign in (again), or to set up a second factor, and back here."""
        back = request.get_full_path()
        if need.after is not None:
            back = _replace_query(back, drop=("prompt",), **{AFTER: int(need.after)})
        signin_state.remember_return(request, back, client.name or client.client_id)
        if need.need == oidc.SET_UP_SECOND_FACTOR:
            return HttpResponseRedirect(reverse("web:setup"))
        params = {"next": back}
        if need.need == oidc.FRESH_SIGN_IN:
            params["reauth"] = "1"
        if need.second_factor:
            params["mfa"] = "1"
        hint = request.GET.get("login_hint", "")
        if hint and len(hint) <= 150:
            params["login_hint"] = hint
        return HttpResponseRedirect(f"{reverse('web:login')}?{urlencode(params)}")


def _token_owner(body: str):
    """The user and client of the access token in a successful token answer."""
    try:
        return oidc.token_owner(json.loads(body).get("access_token"))
    except (ValueError, AttributeError):
        return None


@method_decorator(csrf_exempt, name="dispatch")
class TokenView(dot.TokenView):
    """/oauth/token: one transaction per request, so a code is redeemed once and leaves no orphans."""

    def post(self, request, *args, **kwargs):
        if request.POST.get("grant_type") not in ("authorization_code", "refresh_token"):
            return JsonResponse({"error": "unsupported_grant_type"}, status=400)
        noted = {"started": clock.utcnow(), "replayed": None, "secrets": {}}
        reset = token_request.set(noted)
        try:
            self._check_client_first(request)
            with transaction.atomic():
                _url, headers, body, status = self.create_token_response(request)
                if status != 200 and request.POST.get("grant_type") == "authorization_code":
                    # A refused code leaves nothing behind. (A refused refresh token may have
                    # revoked its family: reuse protection, which must stay.)
                    transaction.set_rollback(True)
        finally:
            token_request.reset(reset)
        if noted["replayed"] is not None:
            oidc.code_replayed(noted["replayed"], origin(request))
        response = HttpResponse(content=body, status=status, content_type="application/json")
        for key, value in headers.items():
            response[key] = value
        if status == 200:
            token = _token_owner(body)
            if token is not None:
                oidc.token_issued(token.user, token.application, origin(request),
                                  refreshed=request.POST.get("grant_type") == "refresh_token")
        return response

    def _check_client_first(self, request) -> None:
        """Authenticate the client (its secret's hash) before the token transaction opens: on
        SQLite that transaction holds the writer's lock, and a hash inside it would queue every
        other write behind it. The validator reuses the answer (Validator._check_secret); the
        whole check runs again inside, so this only moves the cost, never decides anything."""
        core = self.get_oauthlib_core()
        uri, method, body, headers = core._extract_params(request)
        try:
            core.server.request_validator.authenticate_client(OAuthlibRequest(uri, method, body, headers))
        except (ValueError, TypeError, UnicodeError) as error:  # malformed: the real check answers it
            logger.debug("client check before the token transaction: %s", error)


@method_decorator(csrf_exempt, name="dispatch")
class RevokeView(dot.RevokeTokenView):
    """/oauth/revoke (RFC 7009), audited with the application's name."""

    def post(self, request, *args, **kwargs):
        owner = oidc.token_owner(request.POST.get("token", ""), refresh_too=True)
        with transaction.atomic():
            response = super().post(request, *args, **kwargs)
        if response.status_code == 200 and owner is not None:
            oidc.token_revoked(owner.user, owner.application, origin(request))
        return response


class UserInfoView(dot.UserInfoView):
    """/oauth/userinfo: the claims the access token's scopes release."""


class JwksView(View):
    """/oauth/jwks: the active signing key, then the older ones still valid."""

    def get(self, request, *args, **kwargs):
        response = JsonResponse({"keys": signing_keys.published()})
        response["Access-Control-Allow-Origin"] = "*"
        response["Cache-Control"] = "public, max-age=300"
        return response


class DiscoveryView(View):
    """/.well-known/openid-configuration (OpenID Connect Discovery 1.0)."""

    def get(self, request, *args, **kwargs):
        issuer = oauth2_settings.oidc_issuer(request)
        data = {
            "issuer": issuer,
            "authorization_endpoint": issuer + reverse("oauth2_provider:authorize"),
            "token_endpoint": issuer + reverse("oauth2_provider:token"),
            "userinfo_endpoint": issuer + reverse("oauth2_provider:user-info"),
            "jwks_uri": issuer + reverse("oauth2_provider:jwks-info"),
            "end_session_endpoint": issuer + reverse("oauth2_provider:rp-initiated-logout"),
            "revocation_endpoint": issuer + reverse("oauth2_provider:revoke-token"),
            "scopes_supported": list(oidc.SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [*oidc.CLAIM_SCOPES, "iss", "aud", "exp", "iat", "nonce", "at_hash"],
            "acr_values_supported": [oidc.MFA],
            "prompt_values_supported": ["none", "login", "consent"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
        }
        response = JsonResponse(data)
        response["Access-Control-Allow-Origin"] = "*"
        return response


@method_decorator(never_cache, name="dispatch")
class LogoutView(dot.RPInitiatedLogoutView):
    """/oauth/logout (RP-initiated logout): twostep's sign-out, and that application's tokens end."""

    template_name = "twostep/oidc/logout.html"

    def error_response(self, error):
        return render(self.request, ERROR_TEMPLATE, {"error": getattr(error, "error", "invalid_request"),
                                                      "description": getattr(error, "description", "")},
                      status=400)

    def get_request_application(self, id_token, client_id):
        if client_id:
            try:
                return oidc_clients.get(client_id)
            except NotFound:
                from oauth2_provider.exceptions import InvalidOIDCClientError

                raise InvalidOIDCClientError() from None
        if id_token:
            return id_token.application
        return None

    def render_to_response(self, context, **kwargs):
        # The confirmation's form ends, by a redirect, at the application's post-logout URI.
        response = super().render_to_response(context, **kwargs)
        application = context.get("application")
        uri = (getattr(self, "oidc_data", None) or {}).get("post_logout_redirect_uri")
        if application is not None and uri and application.post_logout_redirect_uri_allowed(uri):
            target = signin_state.form_target(uri)
            response.form_targets = [target] if target else []
        return response

    def do_logout(self, application=None, post_logout_redirect_uri=None, state=None, token_user=None):
        user = token_user or (self.request.user if self.request.user.is_authenticated else None)
        if user is not None:
            oidc.signed_out_of_app(user, application, origin(self.request))
        if self.request.user.is_authenticated:
            signin_state.sign_out(self.request)
        if post_logout_redirect_uri:
            target = _replace_query(post_logout_redirect_uri, state=state) if state else post_logout_redirect_uri
            return OAuth2ResponseRedirect(target, application.get_allowed_schemes())
        return HttpResponseRedirect(reverse("web:login"))
