"""How this site turns twostep's answer into one of its own users."""

from urllib.parse import urlencode

from django.conf import settings
from mozilla_django_oidc.auth import OIDCAuthenticationBackend


class TwostepBackend(OIDCAuthenticationBackend):
    """Users are found by `sub` (stable; a login may be renamed), and the sign-in's claims kept."""

    def verify_claims(self, claims):
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(username=claims["sub"])

    def create_user(self, claims):
        return self.UserModel.objects.create_user(claims["sub"], email=claims.get("email", ""))

    def update_user(self, user, claims):
        user.email = claims.get("email", "")
        user.save(update_fields=["email"])
        return user

    def get_userinfo(self, access_token, id_token, payload):
        """Who the person is comes from userinfo; how they signed in (amr, acr) from the ID token."""
        userinfo = super().get_userinfo(access_token, id_token, payload)
        self.request.session["twostep"] = {
            "preferred_username": userinfo.get("preferred_username") or payload.get("preferred_username"),
            "name": userinfo.get("name", ""),
            "account": userinfo.get("account", ""),
            "groups": userinfo.get("groups", []),
            "amr": payload.get("amr", []),
            "acr": payload.get("acr", ""),
            "auth_time": payload.get("auth_time"),
        }
        return userinfo


def logout_url(request):
    """Sign out at twostep too (RP-initiated logout), and come back to this site's home page."""
    params = {"client_id": settings.OIDC_RP_CLIENT_ID,
              "post_logout_redirect_uri": request.build_absolute_uri("/")}
    if request.session.get("oidc_id_token"):
        params["id_token_hint"] = request.session["oidc_id_token"]
    return f"{settings.ISSUER}/oauth/logout?{urlencode(params)}"
