"""The OpenID Connect endpoints, named as django-oauth-toolkit names them (its namespace)."""

from django.urls import path

from . import views

app_name = "oauth2_provider"

urlpatterns = [
    path(".well-known/openid-configuration", views.DiscoveryView.as_view(), name="oidc-connect-discovery-info"),
    path("oauth/authorize", views.AuthorizeView.as_view(), name="authorize"),
    path("oauth/token", views.TokenView.as_view(), name="token"),
    path("oauth/userinfo", views.UserInfoView.as_view(), name="user-info"),
    path("oauth/jwks", views.JwksView.as_view(), name="jwks-info"),
    path("oauth/logout", views.LogoutView.as_view(), name="rp-initiated-logout"),
    path("oauth/revoke", views.RevokeView.as_view(), name="revoke-token"),
]
